"""Recommend service: LightFM hybrid recommendations with business filters and offline evaluation."""
