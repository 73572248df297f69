"""Product categories for the retail demo data, derived from keywords in the product description."""

from __future__ import annotations

import re
from functools import lru_cache

OTHER = "Other"
FEES = "Postage & Fees"

# Stock codes that are not products: postage, carriage, manual adjustments, discounts, samples,
# bank and marketplace charges, charity commission, bad-debt adjustments. Matched before any keyword.
FEE_STOCK_CODES = frozenset({"POST", "DOT", "C2", "M", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"})

# The keyword table, in priority order: the first category with a keyword present wins.
# Keywords match whole words (or whole phrases) in the upper-cased description, so "LIGHT" matches
# "T-LIGHT HOLDER" but not "LIGHTWEIGHT". The order settles overlaps on purpose:
#   Christmas first ("CHRISTMAS CANDLE" is a seasonal item), Toys before Cards ("PLAYING CARDS"),
#   Cards before Party ("BIRTHDAY CARD"), Party and Cards before Bags ("PARTY BAG", "GIFT BAG"),
#   Bags before Kitchen ("LUNCH BAG"), Kitchen before Storage ("LUNCH BOX", "CAKE TINS"),
#   and Home last as the broad catch-all. Clothing (hats, scarves, ponchos) and gift vouchers stay Other.
# fmt: off
CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Christmas", (
        "CHRISTMAS", "XMAS", "ADVENT", "SANTA", "SANTAS", "REINDEER", "SNOWFLAKE", "SNOWMAN", "NATIVITY",
        "BAUBLE", "BAUBLES", "NOEL", "ANGEL", "ANGELS", "STOCKING", "TINSEL",
    )),
    ("Toys", (
        "TOY", "TOYS", "JIGSAW", "PUZZLE", "GAME", "GAMES", "DOLL", "DOLLS", "TEDDY", "PLAYING CARDS",
        "DOMINOES", "SKITTLES", "SKIPPING ROPE", "SPINNING TOP", "SPINNING TOPS", "YO-YO", "SOLDIER",
        "SOLDIERS", "KNITTING NANCY", "KNITTING KIT", "BUBBLES", "MONEY BOX", "PIGGY BANK", "PUPPET",
        "CRAYONS", "COLOURING", "PAINT SET", "HELICOPTER", "LUDO", "BINGO", "SNAKES & LADDERS",
        "BUILDING BLOCK", "PLAYHOUSE", "FLYING DISC", "MODELLING CLAY", "CREEPY CRAWLIES", "TOOL SET",
        "TATTOOS", "SPORTING FUN", "DINOSAUR SET", "PAINT YOUR OWN", "DRAWING SLATE", "NAUGHTS & CROSSES",
        "ROCKING HORSE",
    )),
    ("Cards & Wrap", (
        "CARD", "CARDS", "CARDHOLDER", "GREETING", "WRAP", "WRAPPING", "GIFT TAG", "GIFT TAGS", "TAGS",
        "RIBBON", "RIBBONS", "ENVELOPE", "ENVELOPES", "TISSUE PAPER", "GIFT BAG", "GIFT BAGS", "GIFT BOX",
        "POSTCARD", "NOTELETS",
    )),
    ("Party", (
        "PARTY", "BIRTHDAY", "BUNTING", "BALLOON", "BALLOONS", "CONFETTI", "PAPER CHAIN", "CAKE CANDLES",
        "CRACKER", "CRACKERS", "PINATA", "FANCY DRESS", "STRAWS", "PAPER BALL", "HONEYCOMB FAN",
    )),
    ("Jewellery", (
        "NECKLACE", "NECKL", "BRACELET", "EARRING", "EARRINGS", "BROOCH", "PENDANT", "CHARM", "CHARMS",
        "BEAD", "BEADS", "BEADED", "BANGLE", "DIAMANTE", "JEWELLERY", "HAIR", "HAIRCLIP", "HAIRCLIPS",
        "HAIRBAND", "HAIR SLIDE", "RING", "RINGS", "LARIAT", "BADGES",
    )),
    ("Candles & Lights", (
        "CANDLE", "CANDLES", "CANDLEHOLDER", "CANDLEPOT", "CANDLESTICK", "CANDLESTAND", "CHOCOLATECANDLE",
        "T-LIGHT", "T-LIGHTS", "TEALIGHT", "TEALIGHTS", "LIGHT", "LIGHTS", "LIGHTBULB", "LANTERN",
        "LANTERNS", "LAMP", "LAMPSHADE", "NIGHTLIGHT", "LED", "INCENSE", "OIL BURNER", "CHANDELIER",
        "MATCHES",
    )),
    ("Stationery", (
        "NOTEBOOK", "NOTEBOOKS", "NOTEPAD", "NOTE PAD", "POCKET BOOK", "PENCIL", "PENCILS", "PEN", "PENS",
        "ERASER", "ERASERS", "RUBBER", "RUBBERS", "STICKER", "STICKERS", "SKETCHBOOK", "CALENDAR", "DIARY",
        "JOURNAL", "TAPE", "TAPES", "MARKER", "RULER", "ADDRESS BOOK", "BOOKMARK", "STATIONERY", "MEMO",
        "MEMOBOARD", "SHARPENER", "PAPERWEIGHT", "ORIGAMI", "CHALK", "CHALKBOARD", "WRITING SET", "STENCIL",
        "STAMP SET", "SCISSOR", "SCISSORS", "CALCULATOR", "EXERCISE BOOKS", "NOTE BOOKS", "BLACK BOARD",
    )),
    ("Bags", (
        "BAG", "BAGS", "HANDBAG", "PURSE", "PURSES", "WALLET", "SHOPPER", "TOTE", "RUCKSACK", "BACKPACK",
        "SATCHEL", "WASHBAG", "LUGGAGE", "PASSPORT COVER",
    )),
    ("Garden", (
        "GARDEN", "GARDENERS", "GARDENING", "PLANTER", "PLANT POT", "FLOWER POT", "WATERING CAN",
        "BIRD FEEDER", "BIRDHOUSE", "BIRD HOUSE", "BIRD TABLE", "TROWEL", "SEED", "SEEDS", "HERB", "HERBS",
        "GNOME", "WINDMILL", "PICNIC", "HAMMOCK", "PARASOL", "WIND CHIME", "SPADE", "POTTING", "GROW",
        "TWINE",
    )),
    ("Kitchen", (
        "KITCHEN", "MUG", "MUGS", "CUP", "CUPS", "SAUCER", "SAUCERS", "TEACUP", "TEAPOT", "PLATE", "PLATES",
        "BOWL", "BOWLS", "CUTLERY", "SPOON", "SPOONS", "FORK", "FORKS", "KNIFE", "JUG", "BEAKER", "BEAKERS",
        "TUMBLER", "BAKING", "CAKE", "CAKES", "CAKESTAND", "CAKE CASES", "CAKE TINS", "PETIT FOUR CASES",
        "LUNCH BOX", "APRON", "OVEN GLOVE", "OVEN MITT", "TEA TOWEL", "TEA TOWELS", "NAPKIN", "NAPKINS",
        "PLACEMAT", "PLACEMATS", "COASTER", "COASTERS", "PANTRY", "JAM", "BREAD", "BISCUIT", "DINNER",
        "BREAKFAST", "MOULD", "CUTTER", "CUTTERS", "FRYING PAN", "SCALES", "TEA", "COFFEE", "EGG CUP",
        "EGG COSY", "SNACK", "RECIPE", "CHOPPING BOARD", "DOILY", "DOILIES", "GLASSES", "WINE", "CHOPSTICKS",
        "MILK", "SUGAR", "TRAY", "FOOD COVER", "FOOD CONTAINER", "BUTTER DISH", "DISH", "COLANDER", "LADLE",
        "SQUEEZER", "WASHING UP GLOVES", "COOKING SET", "SALT AND PEPPER", "PLATTER", "ICE LOLLY",
        "CHAMPAGNE GLASS", "MILKSHAKE GLASS", "PLACE SETTING", "PLACE SETTINGS", "BOTTLE OPENER",
    )),
    ("Storage", (
        "STORAGE", "BOX", "BOXES", "BASKET", "BASKETS", "BIN", "DRAWER", "DRAWERS", "CABINET", "TIDY",
        "ORGANISER", "CRATE", "CRATES", "TRUNK", "CHEST", "TIN", "TINS", "JAR", "JARS", "CANISTER", "CASE",
        "CASES", "HOLDER", "HOLDERS", "RACK", "SHELF", "HAMPER", "TRINKET POT", "BUCKET",
    )),
    ("Home", (
        "HOME", "SIGN", "FRAME", "PHOTOFRAME", "MIRROR", "CLOCK", "CUSHION", "CUSHIONS", "CUSHION COVER",
        "C/COVER", "DOORMAT", "DOORSTOP", "DECORATION", "DECORATIONS", "HANGING", "WALL", "ART", "VASE",
        "ORNAMENT", "HOOK", "HOOKS", "HANGER", "HANGERS", "KNOB", "KNOBS", "DRAWERKNOB", "TILE", "BATHROOM",
        "SOAP", "TOWEL", "CURTAIN", "BLANKET", "THROW", "QUILT", "HOT WATER BOTTLE", "HOTTIE", "DOOR",
        "PHOTO", "PICTURE", "PRINT", "WREATH", "GARLAND", "CHIME", "CHIMES", "MOBILE", "PLAQUE",
        "DECORATIVE", "THERMOMETER", "WARMER", "PADS", "FILLER PAD", "FLOWER", "FLOWERS", "BELL", "BELLS",
        "UMBRELLA", "COAT", "STAND", "MAGNET", "MAGNETS", "DOORSIGN", "BUNNY", "FELTCRAFT", "SEWING", "KEY",
        "KEYRING", "TISSUES", "SPONGE", "FLANNEL", "PEGS", "SLIPPER", "IRONING BOARD", "FLYING DUCKS",
        "CLOCHE", "TRELLIS", "WICKER", "WOODEN BLOCK LETTERS", "WOOD LETTERS", "FEATHER TREE",
    )),
)
# fmt: on


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first so a phrase wins over its first word in the alternation; lookarounds give
    # whole-word matching that also treats "-" and "'" as word separators.
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Z0-9])(?:{alternation})(?![A-Z0-9])")


_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, _pattern(words)) for name, words in CATEGORY_KEYWORDS
)

CATEGORIES: tuple[str, ...] = (FEES, *(name for name, _ in CATEGORY_KEYWORDS), OTHER)


@lru_cache(maxsize=65536)
def category_for(description: str, stock_code: str) -> str:
    """The category of a product: fees by stock code, else the first keyword match, else Other."""
    if stock_code.strip().upper() in FEE_STOCK_CODES:
        return FEES
    text = (description or "").upper()
    for name, pattern in _COMPILED:
        if pattern.search(text):
            return name
    return OTHER
