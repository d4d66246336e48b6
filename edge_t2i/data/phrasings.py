"""Phrasings beyond the dataset grammar: what people type.

Two disjoint sets, both over the dataset's attributes (data/vocab.py):
- AUGMENT: sentence patterns, synonyms and extra words used to train the text adapter
  (train/adapter.py), on top of the dataset's own training phrasings (data/captions.py);
- HELDOUT: the held-out phrasing set, other sentence patterns, word orders and extra words that
  never enter training, with each attribute named half the time by a held-out synonym and half
  the time by its plain word; `edge-t2i quality` scores the generator on it.
Neither uses the dataset's NOVEL phrasings (northwest, mauve, quadrate, ...), which stay a third,
harder test. `tests/data/test_phrasings.py` checks that no held-out or novel template or synonym
appears in AUGMENT.
"""

from __future__ import annotations

import re

import numpy as np

from edge_t2i.data.captions import SYNONYMS

# Extra synonyms per attribute value: (augment, held-out). Augment also draws the TRAIN synonyms.
EXTRA: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "shape": {
        "circle": (("round", "dot", "round disc"), ("ball",)),
        "square": (("square tile", "squared box"), ("block",)),
        "triangle": (("wedge", "three-cornered shape"), ("pyramid shape",)),
        "star": (("star symbol", "star sign"), ("star shape",)),
        "hexagon": (("six-cornered shape", "hexagon tile"), ("six-sided polygon",)),
        "cross": (("plus mark", "cross sign"), ("plus symbol",)),
    },
    "color": {
        "red": (("bright red", "blood red"), ("cherry red",)),
        "orange": (("dark orange", "light orange"), ("pumpkin orange",)),
        "yellow": (("gold", "bright yellow"), ("sunny yellow",)),
        "green": (("forest green", "bright green"), ("lime green",)),
        "cyan": (("light cyan", "bright aqua"), ("aquamarine",)),
        "blue": (("deep blue", "bright blue"), ("royal blue",)),
        "purple": (("lavender", "deep purple"), ("plum",)),
        "pink": (("magenta", "light pink"), ("salmon pink",)),
    },
    "size": {
        "small": (("mini", "petite", "very small"), ("smallish",)),
        "large": (("enormous", "very large", "big-sized"), ("massive",)),
    },
    "position": {
        "top-left": (("upper-left", "top left"), ("upper-left corner",)),
        "top": (("top center", "upper center"), ("top edge",)),
        "top-right": (("upper-right", "top right"), ("upper-right corner",)),
        "left": (("left middle", "left-hand side"), ("left edge",)),
        "center": (("centre of the image", "middle of the picture"), ("very middle",)),
        "right": (("right middle", "right-hand side"), ("right edge",)),
        "bottom-left": (("lower-left", "bottom left"), ("lower-left corner",)),
        "bottom": (("bottom center", "lower center"), ("bottom edge",)),
        "bottom-right": (("lower-right", "bottom right"), ("lower-right corner",)),
    },
    "background": {
        "black": (("dark black", "jet black"), ("coal black",)),
        "white": (("plain white", "pure white"), ("paper white",)),
        "gray": (("mid gray", "light grey"), ("ash gray",)),
    },
}

AUGMENT_TEMPLATES = (
    "please draw a {size} {color} {shape} {where}",
    "i want a {color} {shape} that is {size}, {where}",
    "show me a {size} {shape} in {color} {where}{bg}",
    "can you make a {size} {color} {shape} {where}",
    "generate a {color} {size} {shape} {where}{bg}",
    "{where_cap} there should be a {size} {color} {shape}",
    "a {shape}, {color} and {size}, placed {where}",
    "draw one {color} {shape}, {size} size, {where}{bg}",
    "{size} {shape} {where}, color {color}",
    "make the {shape} {color} and {size} and put it {where}",
    "i would like to see a {size} {color} {shape} {where}{bg}",
    "an image of a {size} {color} {shape} {where}{bg}",
    "{color} {shape} {size} {where}",
    "{where_cap}, {size} {color} {shape}{bg}",
    "create a picture with a {size} {color} {shape} {where}",
    "a {size} {shape} which is {color}, {where}{bg}",
)
AUGMENT_WHERE = ("in the {pos}", "at the {pos}", "{pos}", "towards the {pos}", "on the {pos}", "in the {pos} area",
                 "close to the {pos}", "around the {pos}", "at the {pos} of the image", "placed in the {pos}",
                 "in the {pos} part", "positioned {pos}")
# Words around the sentence that carry no attribute: the adapter must learn to look past them.
AUGMENT_PREFIX = ("", "", "", "ok, ", "hey, ", "now ", "quickly, ", "for my game: ", "next one: ", "also ")
AUGMENT_SUFFIX = ("", "", "", " thanks", " please", " for a sprite", " in flat style", " right now", " again", "!")
AUGMENT_BG = (" on a {bg} background", " against {bg}", " with a {bg} background", ", background {bg}")

HELDOUT_TEMPLATES = (
    "draw me a {size} {color} {shape} {where}",
    "i need a {color} {shape}, make it {size}, {where}",
    "could you put a {size} {color} {shape} {where}{bg}",
    "{size} {color} {shape} please, {where}",
    "a {color} colored {shape} that's {size}, sitting {where}",
    "paint a {size} {shape} in {color} {where}{bg}",
    "how about a {size} {color} {shape} {where}",
    "give me one {color} {shape} ({size}) {where}{bg}",
)
HELDOUT_WHERE = ("near the {pos}", "by the {pos}", "over in the {pos}")
HELDOUT_SYNONYM_RATE = 0.5  # share of attribute words drawn from the held-out synonyms
HELDOUT_BG = (" and make the background {bg}", " on {bg}")

# Descriptive words people use for the attributes, in no training phrasing, synonym list or template (the
# DESCRIPTIVE held-out set: benchmarks/reading.py; tests/data/test_phrasings.py checks the disjointness).
# Colours are named as people name them (xkcd colour survey names, Munroe 2010); positions as whole phrases.
DESCRIPTIVE: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("vermilion", "carmine", "cardinal", "tomato"),
        "orange": ("carrot", "mandarin", "marigold", "cantaloupe"),
        "yellow": ("mustard", "banana", "sunflower", "butter"),
        "green": ("shamrock", "kelly green", "clover", "pea green"),
        "cyan": ("seafoam", "tiffany blue", "robin egg blue", "ice blue"),
        "blue": ("sapphire", "ultramarine", "cornflower", "denim"),
        "purple": ("amethyst", "grape", "eggplant", "heliotrope"),
        "pink": ("bubblegum", "flamingo", "carnation", "blush"),
    },
    "size": {
        "small": ("teeny", "wee", "minuscule", "pint-size", "diminutive", "itty-bitty"),
        "large": ("gigantic", "colossal", "jumbo", "mammoth", "oversized", "humongous"),
    },
    "position": {
        "top-left": ("at the top, far left", "leftmost at the top"),
        "top": ("topmost", "up high"),
        "top-right": ("at the top, far right", "rightmost at the top"),
        "left": ("on the far left", "leftmost"),
        "center": ("centrally", "midway"),
        "right": ("on the far right", "rightmost"),
        "bottom-left": ("at the bottom, far left", "leftmost at the bottom"),
        "bottom": ("bottommost", "down low"),
        "bottom-right": ("at the bottom, far right", "rightmost at the bottom"),
    },
}


# A second descriptive set, written blind: by a helper session that had seen neither this repository, its
# lexicon (convert/lexicon.py) nor its sources, asked for the words people would type for each colour and size
# (2026-12-07); the words of a training phrasing or held-out synonym removed by the rule of
# tests/data/test_phrasings.py (ruby, blood red, cherry, amber, pumpkin, canary, forest and grass green,
# aquamarine, royal blue and purple, azure, lilac, mauve, hot pink, miniature, mini, petite, bite-sized, enormous,
# massive), and "blue-green", which says only plain words. The labels are the helper's: "sky blue" is blue to it,
# cyan to the colour survey.
DESCRIPTIVE_BLIND: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("fire engine red", "garnet", "strawberry red"),
        "orange": ("burnt orange", "traffic cone orange", "papaya", "persimmon"),
        "yellow": ("daffodil", "goldenrod", "school bus yellow", "sunshine yellow", "dandelion"),
        "green": ("leaf green", "mint", "spring green", "kiwi"),
        "cyan": ("pool blue", "caribbean blue", "greenish blue", "tropical blue"),
        "blue": ("sky blue", "ocean blue", "midnight blue", "electric blue"),
        "purple": ("orchid", "mulberry", "boysenberry"),
        "pink": ("baby pink", "cotton candy", "pastel pink", "watermelon", "cerise"),
    },
    "size": {
        "small": ("teensy", "dinky", "puny", "compact"),
        "large": ("vast", "hefty", "immense", "titanic", "whopping", "king-size"),
    },
}


# A third descriptive set, written blind the same way on 2026-12-08 by another helper session (asked for 15 colour
# names and 15 size words a value, and 5 position phrases; told only which words were used already), measured once
# after the lexicon's 2026-12-08 sources (color-name-list, the wider WordNet size rule) were final. Removed by the
# rule of tests/data/test_phrasings.py: 37 colour and size words of a training phrasing ("bright red", "lemon", "aqua
# blue", "pocket-sized") and 41 of the 45 position phrases ("in the upper left corner", "dead center"), so it has
# no positions (the four left would not cover the nine values).
DESCRIPTIVE_BLIND_2: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("brick red", "candy apple red", "lipstick red", "poppy red", "ferrari red", "ketchup red",
                "chili red", "signal red", "oxblood", "cranberry"),
        "orange": ("clementine", "safety orange", "blaze orange", "neon orange", "creamsicle orange", "sunset orange",
                   "halloween orange", "tiger orange", "goldfish orange", "basketball orange", "marmalade", "kumquat",
                   "cadmium orange"),
        "yellow": ("buttercup", "highlighter yellow", "neon yellow", "taxi yellow", "egg yolk yellow", "maize",
                   "corn yellow", "primrose yellow", "rubber duck yellow", "caution yellow"),
        "green": ("olive green", "sage green", "moss green", "pine green", "hunter green", "bottle green",
                  "jungle green", "apple green", "fern green", "frog green", "evergreen", "pistachio green",
                  "neon green"),
        "cyan": ("bondi blue", "lagoon blue", "blue lagoon", "bahama blue", "cayman blue", "electric cyan",
                 "process cyan"),
        "blue": ("cerulean", "powder blue", "baby blue", "steel blue", "prussian blue", "blueberry", "lapis blue",
                 "klein blue", "carolina blue", "dodger blue", "delft blue", "bluebell"),
        "purple": ("plum", "aubergine", "wisteria", "tyrian purple", "imperial purple", "byzantium", "ube",
                   "barney purple", "iris purple", "pansy purple", "prince purple"),
        "pink": ("powder pink", "neon pink", "shocking pink", "candy pink", "barbie pink", "millennial pink",
                 "peony pink", "ballet pink", "piggy pink", "pepto pink", "strawberry milk pink"),
    },
    "size": {
        "small": ("smallish", "baby", "microscopic", "lilliputian", "undersized", "titchy", "weeny", "dainty",
                  "bitty", "minute", "scaled-down"),
        "large": ("largish", "sizable", "gargantuan", "ginormous", "monstrous", "supersized", "extra-large", "mega",
                  "tremendous", "elephantine", "mountainous", "hulking", "bulky", "monumental", "brobdingnagian"),
    },
}


# A fourth, written blind the same way on 2026-12-08 by a third helper session (15 colour names and 15 size words
# a value; told only which words were used already), measured once, after the compound rule of convert/lexicon.py was
# chosen on the sets above. Removed by the rule of tests/data/test_phrasings.py: 1 word of a training phrasing.
DESCRIPTIVE_BLIND_3: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("apple red", "racing red", "coca-cola red", "christmas red", "ladybug red", "lobster red", "beet red",
                "cadmium red", "barn red", "alizarin", "rosso corsa", "lava red", "santa red", "rouge",
                "valentine red"),
        "orange": ("satsuma", "tangelo", "fanta orange", "cheeto orange", "hunter orange", "construction orange",
                   "sherbet orange", "mango orange", "jack-o'-lantern orange", "koi orange", "monarch orange",
                   "dutch orange", "home depot orange", "ginger", "hermes orange"),
        "yellow": ("citrine", "pineapple yellow", "baby chick yellow", "pikachu yellow", "minion yellow",
                   "bumblebee yellow", "cadmium yellow", "chrome yellow", "hansa yellow", "jonquil", "straw yellow",
                   "sulfur yellow", "spongebob yellow", "citron", "tweety yellow"),
        "green": ("kermit green", "lincoln green", "irish green", "viridian", "malachite", "avocado green",
                  "basil green", "lettuce green", "money green", "john deere green", "christmas green", "hulk green",
                  "grinch green", "british racing green", "verdant"),
        "cyan": ("peacock blue", "duck egg blue", "verdigris", "neon cyan", "printer cyan", "mermaid blue",
                 "tron blue", "bermuda blue", "maldives blue", "sea glass blue", "glacier blue", "capri blue",
                 "windex blue", "vivid cyan"),
        "blue": ("oxford blue", "yale blue", "duke blue", "air force blue", "police blue", "facebook blue",
                 "pepsi blue", "smurf blue", "cookie monster blue", "egyptian blue", "french blue", "ink blue",
                 "sailor blue", "ballpoint pen blue", "true blue"),
        "purple": ("thistle", "crocus purple", "cadbury purple", "crown royal purple", "lakers purple",
                   "grimace purple", "twitch purple", "thanos purple", "damson", "jacaranda purple",
                   "electric purple", "purple haze", "acai purple", "elderberry purple", "yahoo purple"),
        "pink": ("rosy", "cherry blossom pink", "sakura pink", "taffy pink", "hello kitty pink", "t-mobile pink",
                 "pink panther pink", "pink lemonade", "hibiscus pink", "azalea pink", "princess pink", "dusty pink",
                 "raspberry pink", "sorbet pink", "persian pink"),
    },
    "size": {
        "small": ("micro", "nano", "pygmy", "dwarf", "bantam", "half-pint", "knee-high", "elfin", "teacup", "ickle",
                  "eensy", "tiddly", "fun-size", "runty", "pee-wee"),
        "large": ("towering", "whacking great", "ample", "substantial", "outsize", "prodigious", "stupendous",
                  "cyclopean", "behemoth", "astronomical", "walloping", "honking", "mondo", "monster", "mighty"),
    },
}


# A fifth, written blind the same way on 2026-12-08 by a fourth helper session (15 colour names and 15 size words
# a value; told only which words were used already), measured once, after WordNet's nouns of sizes and the
# unanimous lexicon-typo rule were added on the sets above. Removed: 7 words of a training phrasing, 0 already used.
DESCRIPTIVE_BLIND_4: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("fire truck red", "raspberry red", "paprika red", "chinese red", "cinnabar", "pomegranate red",
                "sriracha red", "flame red", "cayenne red", "geranium red", "stoplight red", "netflix red",
                "youtube red", "tulip red", "lego red"),
        "orange": ("hi-vis orange", "international orange", "nickelodeon orange", "fox orange", "tang orange",
                   "butternut squash orange", "sweet potato orange", "life jacket orange", "prison jumpsuit orange",
                   "easyjet orange", "clownfish orange", "garfield orange", "autumn leaf orange"),
        "yellow": ("sun yellow", "smiley face yellow", "emoji yellow", "simpsons yellow", "pencil yellow",
                   "mcdonald's yellow", "ikea yellow", "snapchat yellow", "daisy yellow", "goldfinch yellow",
                   "custard yellow", "forsythia yellow", "safety yellow", "mimosa yellow"),
        "green": ("shrek green", "broccoli green", "spinach green", "cucumber green", "lizard green",
                  "astroturf green", "st. patrick's day green", "leprechaun green", "starbucks green",
                  "android green", "spotify green", "army green", "peridot", "ivy green", "alien green"),
        "cyan": ("miami blue", "cancun blue", "bora bora blue", "fiji blue", "tahiti blue", "aruba blue", "larimar",
                 "amazonite", "paraiba blue", "swiss blue topaz", "minecraft diamond blue", "cmyk cyan", "#00ffff",
                 "cyberpunk cyan"),
        "blue": ("blue jay blue", "bluebird blue", "dory blue", "avatar blue", "genie blue", "sonic blue",
                 "tardis blue", "ford blue", "twitter blue", "samsung blue", "hydrangea blue", "ming blue",
                 "admiral blue", "blue raspberry"),
        "purple": ("taro purple", "purple sweet potato", "mardi gras purple", "vikings purple", "lsu purple",
                   "fedex purple", "milka purple", "gamecube purple", "joker purple", "rapunzel purple",
                   "wonka purple", "petunia purple", "clematis purple", "charoite", "bishop purple"),
        "pink": ("morganite", "tickled pink", "kirby pink", "jigglypuff pink", "victoria's secret pink", "lyft pink",
                 "camellia pink", "sweet pea pink", "lotus pink", "cosmos pink", "strawberry frosting pink",
                 "nursery pink", "mean girls pink"),
    },
    "size": {
        "small": ("smol", "lil", "diddy", "peedie", "shrimpy", "stunted", "slight", "modest", "travel-size",
                  "kid-size", "snack-size", "shrunken", "infinitesimal", "pipsqueak", "handheld"),
        "large": ("yuge", "chonky", "gert", "stonking", "thumping", "family-size", "economy-size", "goliath",
                  "leviathan", "kaiju-size", "planet-size", "house-size", "voluminous", "whale-size", "bumper"),
    },
}


# A sixth, written blind the same way on 2026-12-08 by a fifth helper session (15 colour names and 15 size words
# a value, what ordinary people say; told only which words were used already), measured once, after the rule that
# a phrase before a bank word of its attribute reads as that word. It notes that the everyday names of cyan were
# taken, so its cyans are all "X blue", and that "sized" was taken ("coin-size"). Removed: "yield sign yellow" ("sign").
DESCRIPTIVE_BLIND_5: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("elmo red", "clifford red", "mario red", "spider-man red", "fire hydrant red", "london bus red",
                "bell pepper red", "radish red", "tabasco red", "target red", "lingonberry red", "maraschino red",
                "ember red", "canadian flag red", "pokeball red"),
        "orange": ("nemo orange", "tigger orange", "orangutan orange", "cheddar orange", "cheese puff orange",
                   "nacho cheese orange", "pylon orange", "buoy orange", "sunkist orange", "crush soda orange",
                   "tennessee orange", "clemson orange", "harley-davidson orange", "broncos orange", "yam orange"),
        "yellow": ("duckling yellow", "raincoat yellow", "hard hat yellow", "caterpillar yellow", "dewalt yellow",
                   "pac-man yellow", "crime scene tape yellow", "peeps yellow", "wasp yellow", "scrambled egg yellow",
                   "pollen yellow", "legal pad yellow", "swiss cheese yellow", "sticky note yellow"),
        "green": ("yoda green", "slime green", "ninja turtle green", "celery green", "zucchini green", "kale green",
                  "pickle green", "cactus green", "grasshopper green", "gecko green", "iguana green",
                  "golf course green", "xbox green", "celtics green", "holly green"),
        "cyan": ("arctic blue", "iceberg blue", "icicle blue", "frosty blue", "polar blue", "chlorine blue",
                 "aquarium blue", "water park blue", "shallow water blue", "bali blue", "belize blue",
                 "seychelles blue", "hologram blue", "elsa blue", "maui blue"),
        "blue": ("stitch blue", "grover blue", "superman blue", "captain america blue", "sadness blue", "neon blue",
                 "marine blue", "lake blue", "mailbox blue", "tarp blue", "recycling bin blue", "linkedin blue",
                 "ibm blue", "walmart blue", "bluebonnet blue"),
        "purple": ("gengar purple", "spyro purple", "tinky winky purple", "ursula purple", "maleficent purple",
                   "daphne purple", "ravens purple", "northwestern purple", "welch's purple", "ribena purple",
                   "blackcurrant purple", "bruise purple", "blacklight purple", "galaxy purple", "hyacinth purple"),
        "pink": ("peppa pig pink", "piglet pink", "elle woods pink", "dragon fruit pink", "sprinkle donut pink",
                 "tutu pink", "lip gloss pink", "breast cancer ribbon pink", "calamine pink", "axolotl pink",
                 "himalayan salt pink", "baskin-robbins pink", "bougainvillea pink", "tulip pink",
                 "princess peach pink"),
    },
    "size": {
        "small": ("itsy-bitsy", "coin-size", "palm-size", "button-size", "marble-size", "dime-size", "ant-size",
                  "mouse-size", "doll-size", "thumb-size", "keychain-size", "matchbox-size", "postage-stamp-size",
                  "child-size", "fingertip-size"),
        "large": ("mahoosive", "xxl", "wall-size", "queen-size", "elephant-size", "dinosaur-size", "godzilla-size",
                  "bus-size", "truck-size", "car-size", "skyscraper-size", "stadium-size", "billboard-size",
                  "room-size", "blown-up"),
    },
}


def _words(attr: str, value: str, heldout: bool) -> tuple[str, ...]:
    """AUGMENT: the training synonyms and the augmentation ones; HELDOUT: the held-out synonyms only."""
    train, _novel = SYNONYMS[attr][value]
    augment, held = EXTRA[attr][value]
    return held if heldout else train + augment


def _heldout_word(rng: np.random.Generator, attr: str, value: str) -> str:
    """Half the time a held-out synonym, else the plain word (as people mostly type "red", "star")."""
    options = EXTRA[attr][value][1] if rng.random() < HELDOUT_SYNONYM_RATE else (value.replace("-", " "),)
    return options[int(rng.integers(len(options)))]


def phrase(rng: np.random.Generator, shape: str, color: str, size: str, position: str,
           background: str | None, heldout: bool) -> str:
    """One caption of these attributes in the AUGMENT (heldout=False) or HELDOUT phrasing, seeded by `rng`;
    the background is named only when `background` is given and the template has a place for it."""
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    word = (lambda a, v: _heldout_word(rng, a, v)) if heldout else (lambda a, v: pick(_words(a, v, False)))
    words = {a: word(a, v) for a, v in (("shape", shape), ("color", color), ("size", size), ("position", position))}
    where = pick(HELDOUT_WHERE if heldout else AUGMENT_WHERE).format(pos=words["position"])
    bg = ""
    if background is not None:
        bg = pick(HELDOUT_BG if heldout else AUGMENT_BG).format(bg=word("background", background))
    template = pick(HELDOUT_TEMPLATES if heldout else AUGMENT_TEMPLATES)
    if background is not None and "{bg}" not in template:  # name it anyway: the caller asked for it
        template += "{bg}"
    text = template.format(size=words["size"], color=words["color"], shape=words["shape"], where=where,
                           where_cap=where[0].upper() + where[1:], bg=bg)
    if not heldout:
        text = pick(AUGMENT_PREFIX) + text + pick(AUGMENT_SUFFIX)
    return re.sub(r"\s+", " ", text).strip()


def descriptive(rng: np.random.Generator, shape: str, color: str, size: str, position: str,
                table: dict[str, dict[str, tuple[str, ...]]] = DESCRIPTIVE) -> tuple[str, str]:
    """(a held-out phrasing (HELDOUT_TEMPLATES) of these attributes whose colour, size or position, one of those
    `table` (DESCRIPTIVE, or a DESCRIPTIVE_BLIND* set) has, at random, is said with its word; the attribute it is):
    "draw me a mammoth blue star near the top"."""
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    attr = pick(tuple(a for a in ("color", "size", "position") if a in table))
    words = {"color": color, "size": size, "position": position.replace("-", " ")}
    words[attr] = pick(table[attr][{"color": color, "size": size, "position": position}[attr]])
    where = words["position"] if attr == "position" else pick(HELDOUT_WHERE).format(pos=words["position"])
    template = pick(HELDOUT_TEMPLATES)
    text = template.format(size=words["size"], color=words["color"], shape=shape, where=where,
                           where_cap=where[0].upper() + where[1:], bg="")
    return re.sub(r"\s+", " ", text).strip(), attr
