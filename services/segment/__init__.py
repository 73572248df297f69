"""The segment service: rule segments over portraits, stored as numbered membership versions."""
