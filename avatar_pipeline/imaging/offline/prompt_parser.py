"""Read the words the offline renderer understands out of a prompt.

The parser is deliberately small and literal: it tokenises on word boundaries, splits the text
into clauses (commas, "and", "with", "over", ...), and inside each clause attaches colour and
length words to the noun they precede ("long silver hair", "green cardigan"). Words it does not
know are ignored. The composed prompts of :mod:`avatar_pipeline.domain.prompts` contain phrases
such as "keep the face, hair, eye colour and outfit exactly": a noun without a colour word
states nothing, so those phrases add no trait.

A negative prompt goes through the same parser; its traits are only ever used to *exclude*
values from the seeded choices (see :func:`parse_negative`), never to add them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Colour words -> canonical colour name (the palettes in ``character.py`` give the RGB).
COLOUR_WORDS: dict[str, str] = {
    "black": "black",
    "raven": "black",
    "ebony": "black",
    "brown": "brown",
    "chestnut": "brown",
    "brunette": "brown",
    "hazel": "hazel",
    "blonde": "blonde",
    "blond": "blonde",
    "golden": "gold",
    "gold": "gold",
    "amber": "amber",
    "red": "red",
    "crimson": "red",
    "scarlet": "red",
    "ginger": "orange",
    "auburn": "auburn",
    "orange": "orange",
    "silver": "silver",
    "platinum": "silver",
    "grey": "grey",
    "gray": "grey",
    "white": "white",
    "pink": "pink",
    "rose": "pink",
    "blue": "blue",
    "azure": "blue",
    "sapphire": "blue",
    "navy": "navy",
    "teal": "teal",
    "turquoise": "teal",
    "cyan": "teal",
    "green": "green",
    "emerald": "green",
    "olive": "olive",
    "mint": "mint",
    "purple": "purple",
    "violet": "purple",
    "lavender": "lavender",
    "lilac": "lavender",
    "yellow": "yellow",
    "beige": "beige",
    "cream": "cream",
    "khaki": "beige",
    "maroon": "maroon",
    "burgundy": "maroon",
}
HAIR_LENGTH_WORDS: dict[str, str] = {
    "short": "short",
    "bob": "short",
    "pixie": "short",
    "cropped": "short",
    "shoulder-length": "shoulder",
    "medium-length": "shoulder",
    "mid-length": "shoulder",
    "long": "long",
    "flowing": "long",
    "waist-length": "long",
}
OUTFIT_WORDS: dict[str, str] = {
    "cardigan": "cardigan",
    "sweater": "sweater",
    "jumper": "sweater",
    "pullover": "sweater",
    "dress": "dress",
    "gown": "dress",
    "sundress": "sundress",
    "hoodie": "hoodie",
    "sweatshirt": "hoodie",
    "jacket": "jacket",
    "coat": "jacket",
    "blazer": "jacket",
    "suit": "suit",
    "tuxedo": "suit",
    "kimono": "kimono",
    "yukata": "kimono",
    "t-shirt": "tshirt",
    "tshirt": "tshirt",
    "tee": "tshirt",
    "uniform": "uniform",
    "sailor": "uniform",
    "blouse": "blouse",
    "shirt": "blouse",
}
INNER_GARMENTS = frozenset({"blouse", "tshirt"})  # worn under a cardigan, jacket, ...
BOTTOM_WORDS: dict[str, str] = {
    "skirt": "skirt",
    "trousers": "trousers",
    "pants": "trousers",
    "slacks": "trousers",
    "jeans": "jeans",
    "shorts": "shorts",
}
ACCESSORY_WORDS: dict[str, str] = {
    "glasses": "glasses",
    "spectacles": "glasses",
    "ribbon": "ribbon",
    "bow": "ribbon",
    "hairclip": "hairclip",
    "hairpin": "hairclip",
    "clip": "hairclip",
    "flower": "flower",
    "headband": "headband",
    "hairband": "headband",
}
EXPRESSION_WORDS: dict[str, str] = {
    "neutral": "neutral",
    "calm": "neutral",
    "expressionless": "neutral",
    "happy": "happy",
    "smile": "happy",
    "smiling": "happy",
    "joyful": "happy",
    "cheerful": "happy",
    "laughing": "happy",
    "shy": "shy",
    "bashful": "shy",
    "timid": "shy",
    "flustered": "flustered",
    "embarrassed": "flustered",
    "blushing": "flustered",
    "sad": "sad",
    "crying": "sad",
    "unhappy": "sad",
    "downturned": "sad",
    "angry": "angry",
    "furious": "angry",
    "annoyed": "angry",
    "furrowed": "angry",
    "surprised": "surprised",
    "shocked": "surprised",
    "astonished": "surprised",
    "thinking": "thinking",
    "pensive": "thinking",
    "thoughtful": "thinking",
    "pondering": "thinking",
}
POSE_WORDS: dict[str, str] = {
    "standing": "standing",
    "stands": "standing",
    "sitting": "sitting",
    "seated": "sitting",
    "sits": "sitting",
    "waving": "waving",
    "waves": "waving",
    "walking": "walking",
    "mid-stride": "walking",
    "strolling": "walking",
}
STYLE_MEDIUM_WORDS: dict[str, str] = {
    "anime": "anime",
    "manga": "anime",
    "cel": "anime",
    "watercolor": "watercolor",
    "watercolour": "watercolor",
    "painterly": "watercolor",
    "pixel": "pixel",
    "8-bit": "pixel",
    "16-bit": "pixel",
    "realistic": "realistic",
    "photorealistic": "realistic",
    "semi-realistic": "realistic",
    "photo": "realistic",
}
PALETTE_WORDS: dict[str, str] = {"pastel": "pastel", "warm": "warm", "cool": "cool"}
# "warm"/"cool" are palette words only next to one of these ("warm smile" is not a palette).
PALETTE_NOUNS = frozenset({"palette", "colors", "colours", "tones", "tone", "lighting", "light"})
COLOUR_MODIFIERS: dict[str, str] = {
    "light": "light",
    "pale": "light",
    "dark": "dark",
    "deep": "dark",
}

PORTRAIT_PHRASES = ("portrait", "shoulders up", "headshot", "bust", "close-up", "close up")
FULLBODY_PHRASES = ("full body", "full-body", "head to toe", "full length", "full-length")

# "gentle closed-mouth smile", "soft smile", "slight smile": the portrait anchor's face.
_GENTLE_SMILE = re.compile(
    r"\b(?:gentle|soft|slight|faint|closed-mouth)(?: closed-mouth)? smile\b|\bsmiling softly\b"
)
_HANDS_ON_HIPS = re.compile(r"\bhands? on (?:the |her |his |their )?hips\b|\bakimbo\b")
_CLAUSE_SPLIT = re.compile(r"[,;.:()\n]|\b(?:and|with|over|under|plus|wearing|in)\b")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NOUN_WINDOW = 4  # how many words before a noun may describe it


@dataclass(frozen=True)
class ColourWord:
    name: str
    modifier: str | None = None  # "light" | "dark" | None


@dataclass
class PromptTraits:
    """Everything a prompt states; ``None`` means the prompt leaves it open."""

    hair_colour: ColourWord | None = None
    hair_length: str | None = None
    eye_colour: ColourWord | None = None
    outfit_kind: str | None = None
    outfit_colour: ColourWord | None = None
    accent_colour: ColourWord | None = None  # a second garment's colour ("over a white blouse")
    bottom_kind: str | None = None
    bottom_colour: ColourWord | None = None
    accessories: list[str] = field(default_factory=list)
    medium: str | None = None
    cel_shading: bool = False
    palette: str | None = None
    expression: str | None = None
    pose: str | None = None
    framing: str | None = None  # "portrait" | "fullbody"

    def stated_appearance(self) -> dict[str, object]:
        """The appearance traits the prompt states (for provenance in ``ProviderResult.extra``)."""
        out: dict[str, object] = {}
        for name in (
            "hair_colour",
            "eye_colour",
            "outfit_colour",
            "accent_colour",
            "bottom_colour",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = (
                    value.name if value.modifier is None else f"{value.modifier} {value.name}"
                )
        for name in ("hair_length", "outfit_kind", "bottom_kind", "medium", "palette"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.accessories:
            out["accessories"] = list(self.accessories)
        return out


@dataclass(frozen=True)
class Exclusions:
    """Values a negative prompt rules out of the seeded choices."""

    hair_colours: frozenset[str] = frozenset()
    hair_lengths: frozenset[str] = frozenset()
    eye_colours: frozenset[str] = frozenset()
    outfit_kinds: frozenset[str] = frozenset()
    outfit_colours: frozenset[str] = frozenset()
    accessories: frozenset[str] = frozenset()


def _words(clause: str) -> list[str]:
    return _WORD.findall(clause)


def _colour_before(words: list[str], index: int) -> ColourWord | None:
    """The colour word (with an optional light/dark modifier) just before ``words[index]``."""
    for j in range(index - 1, max(-1, index - 1 - _NOUN_WINDOW), -1):
        word = words[j]
        if word in COLOUR_WORDS:
            modifier = COLOUR_MODIFIERS.get(words[j - 1]) if j > 0 else None
            return ColourWord(COLOUR_WORDS[word], modifier)
        if word in OUTFIT_WORDS or word in ("hair", "eyes", "eye"):
            return None  # another noun: its colour words are not ours
    return None


def _first_in(words: list[str], table: dict[str, str]) -> str | None:
    for word in words:
        if word in table:
            return table[word]
    return None


def parse_prompt(prompt: str) -> PromptTraits:
    """Parse ``prompt`` into the traits it states; unknown words are ignored."""
    text = (prompt or "").lower()
    traits = PromptTraits()
    for clause in _CLAUSE_SPLIT.split(text):
        if not clause:
            continue
        words = _words(clause)
        for i, word in enumerate(words):
            head, _, tail = word.rpartition("-")
            if tail in ("haired", "eyed") and head in COLOUR_WORDS:
                # "silver-haired", "blue-eyed"
                slot = "hair_colour" if tail == "haired" else "eye_colour"
                if getattr(traits, slot) is None:
                    setattr(traits, slot, ColourWord(COLOUR_WORDS[head]))
                continue
            if word in ("hair", "haired", "hairstyle"):
                traits.hair_colour = traits.hair_colour or _colour_before(words, i)
                for j in range(max(0, i - _NOUN_WINDOW), i):
                    if words[j] in HAIR_LENGTH_WORDS and traits.hair_length is None:
                        traits.hair_length = HAIR_LENGTH_WORDS[words[j]]
            elif word in ("eyes", "eyed"):
                traits.eye_colour = traits.eye_colour or _colour_before(words, i)
            elif word in OUTFIT_WORDS:
                colour = _colour_before(words, i)
                kind = OUTFIT_WORDS[word]
                if traits.outfit_kind in INNER_GARMENTS and kind not in INNER_GARMENTS:
                    # "a white blouse under a green cardigan": the outer garment is the outfit
                    traits.accent_colour = traits.outfit_colour or traits.accent_colour
                    traits.outfit_kind, traits.outfit_colour = kind, colour
                elif traits.outfit_kind is None:
                    traits.outfit_kind, traits.outfit_colour = kind, colour
                elif colour is not None and traits.accent_colour is None:
                    traits.accent_colour = colour
            elif word in BOTTOM_WORDS and traits.bottom_kind is None:
                traits.bottom_kind = BOTTOM_WORDS[word]
                traits.bottom_colour = _colour_before(words, i)
            elif word in ("blonde", "blond", "redhead", "brunette") and traits.hair_colour is None:
                # "a blonde girl", "a redhead": hair colour without the word "hair".
                name = "red" if word == "redhead" else COLOUR_WORDS[word]
                traits.hair_colour = ColourWord(name)
            negated = any(w in ("no", "without") for w in words[max(0, i - 2) : i])
            accessory = ACCESSORY_WORDS.get(word)
            if accessory and not negated and accessory not in traits.accessories:
                traits.accessories.append(accessory)
    all_words = _words(text)
    _parse_style(all_words, traits)
    traits.expression = _parse_named(text, all_words, EXPRESSION_WORDS, "expression")
    others = [w for w in all_words if w in EXPRESSION_WORDS and w not in ("smile", "smiling")]
    if _GENTLE_SMILE.search(text) and not others:
        traits.expression = "gentle"  # a soft closed-mouth smile is not the happy expression
    traits.pose = _parse_named(text, all_words, POSE_WORDS, "pose")
    if _HANDS_ON_HIPS.search(text) and traits.pose in (None, "standing"):
        traits.pose = "hands_on_hips"  # "standing pose, hands on hips": the arms decide
    if re.search(r"\bhands? (?:raised|up)\b|\braised hand\b", text) and traits.pose is None:
        traits.pose = "waving"
    if re.search(r"\bhand on (?:the |her |his |their )?chin\b", text) and traits.expression is None:
        traits.expression = "thinking"
    if any(re.search(rf"\b{re.escape(p)}\b", text) for p in FULLBODY_PHRASES):
        traits.framing = "fullbody"
    elif any(re.search(rf"\b{re.escape(p)}\b", text) for p in PORTRAIT_PHRASES):
        traits.framing = "portrait"
    elif traits.pose is not None:
        traits.framing = "fullbody"
    return traits


def _parse_style(words: list[str], traits: PromptTraits) -> None:
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in STYLE_MEDIUM_WORDS and traits.medium is None:
            if word == "pixel" and nxt not in ("art", "style", "sprite", "graphics", "pixel"):
                continue
            if word == "photo" and nxt not in ("realistic", "style", "real"):
                continue
            traits.medium = STYLE_MEDIUM_WORDS[word]
        if word == "cel" or (word == "flat" and nxt == "colors"):
            traits.cel_shading = True
        if word in PALETTE_WORDS and traits.palette is None:
            if word == "pastel" or nxt in PALETTE_NOUNS or nxt.endswith("-toned"):
                traits.palette = PALETTE_WORDS[word]
        elif word in ("warm-toned", "cool-toned") and traits.palette is None:
            traits.palette = word.split("-")[0]


def _named(text: str, table: dict[str, str], noun: str) -> str | None:
    """The value of an explicit "<name> expression"/"<name> pose", if the text has one."""
    for match in re.finditer(rf"\b([a-z-]+) {noun}\b", text):
        if match.group(1) in table:
            return table[match.group(1)]
    return None


def _parse_named(text: str, words: list[str], table: dict[str, str], noun: str) -> str | None:
    """Prefer an explicit "<name> expression"/"<name> pose"; else the first known word."""
    return _named(text, table, noun) or _first_in(words, table)


def parse_negative(negative_prompt: str | None) -> Exclusions:
    """Values a negative prompt rules out; it never adds a trait."""
    if not negative_prompt:
        return Exclusions()
    traits = parse_prompt(negative_prompt)
    text = negative_prompt.lower()
    words = set(_words(text))
    lengths = {traits.hair_length} if traits.hair_length else set()
    return Exclusions(
        hair_colours=frozenset({traits.hair_colour.name} if traits.hair_colour else set()),
        hair_lengths=frozenset(lengths),
        eye_colours=frozenset({traits.eye_colour.name} if traits.eye_colour else set()),
        outfit_kinds=frozenset(OUTFIT_WORDS[w] for w in words if w in OUTFIT_WORDS),
        outfit_colours=frozenset({traits.outfit_colour.name} if traits.outfit_colour else set()),
        accessories=frozenset(traits.accessories),
    )
