"""Generated questions about a passage (``data=passages``): short passages of facts about invented
people, and questions whose answer is read out of the passage.

    {"question": "Where does Norzu live?",
     "context": "Norzu moved from Zanvar to Sarme. Kelbi is 41 years old. Norzu is 52 ...",
     "answer": "Sarme", "family": "place"}

Each passage tells of two to four people, its sentences shuffled together, with several
phrasings of each fact. Families (the ``family`` field, for per-kind metrics):

- ``place``: where someone lives, comes from, moved from or to;
- ``name``: a relative's or a friend's name, or whose relative someone is;
- ``number``: an age, a count, a year;
- ``word``: a job, a favourite colour, a pet;
- ``comparison``: who of two is older, younger, or has more of something.

People and places are invented names, drawn for each split from its own pool: no validation or
test name occurs in training, so a model must read names it has never seen (copy attention is
built for that). Same seed, same files.
"""

from __future__ import annotations

import random
from pathlib import Path

from qa_seq2seq.data.toy import Example, ensure_generated

SPLIT_SIZES = {"train": 40000, "validation": 1000, "test": 2000}
# People and places per split. Training's pool is large, so that most names occur in one or two
# passages: a model learns to read names, not to know them.
POOL_SIZES = {"train": (60000, 30000), "validation": (1000, 500), "test": (1000, 500)}
QUESTIONS_PER_PASSAGE = 3

ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "pr",
          "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ei", "ou", "ia")
CODAS = ("", "", "", "n", "r", "l", "s", "m", "k", "th", "nd", "rn")
JOBS = ("baker", "farmer", "teacher", "painter", "nurse", "miller", "sailor", "weaver", "potter",
        "doctor", "carpenter", "singer", "tailor", "fisher", "smith", "gardener", "clerk", "judge",
        "cook", "builder", "hunter", "guard", "merchant", "brewer", "miner", "scribe")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "teal", "grey", "white",
           "black", "pink", "brown", "gold", "silver", "violet", "amber")
PETS = ("cat", "dog", "parrot", "goat", "rabbit", "horse", "owl", "tortoise", "lizard", "hamster",
        "ferret", "pony", "crow", "snake")
THINGS = ("books", "cats", "chickens", "brothers", "sisters", "sheep", "boats", "trees", "keys",
          "coins", "hats", "cousins")
RELATIONS = ("sister", "brother", "mother", "father", "cousin", "daughter", "son", "uncle",
             "aunt")


def invented_names(rng: random.Random, count: int, syllables: tuple[int, int]) -> list[str]:
    """``count`` unique capitalised names of ``syllables`` (low, high) syllables."""
    names: set[str] = set()
    while len(names) < count:
        parts = [rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                 for _ in range(rng.randint(*syllables))]
        names.add("".join(parts).capitalize())
    return sorted(names)


def pools(rng: random.Random) -> dict[str, dict[str, list[str]]]:
    """Disjoint people and places for each split: ``{split: {"people": [...], "places": [...]}}``."""
    total = [sum(sizes[i] for sizes in POOL_SIZES.values()) for i in (0, 1)]
    names = invented_names(rng, sum(total), (2, 3))
    rng.shuffle(names)
    people, places = names[:total[0]], names[total[0]:]
    split: dict[str, dict[str, list[str]]] = {}
    for name, (n_people, n_places) in POOL_SIZES.items():
        split[name] = {"people": people[:n_people], "places": places[:n_places]}
        people, places = people[n_people:], places[n_places:]
    return split


def indefinite(noun: str) -> str:
    """``a baker``, ``an owl``."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


class Person:
    """One person's facts, each told by one sentence of the passage."""

    def __init__(self, rng: random.Random, name: str, places: list[str], relative: str):
        self.name = name
        self.home, self.origin = rng.sample(places, 2)
        self.age = rng.randint(18, 90)
        self.relation, self.relative = rng.choice(RELATIONS), relative
        self.job, self.colour, self.pet = rng.choice(JOBS), rng.choice(COLOURS), rng.choice(PETS)
        self.things, self.count = rng.choice(THINGS), rng.randint(2, 19)
        self.since = rng.randint(1950, 2020)

    def sentences(self, rng: random.Random) -> tuple[list[str], set[str]]:
        """The sentences that tell some of this person's facts, and which facts they tell."""
        x = self.name
        told: dict[str, list[str]] = {
            "home": [f"{x} lives in {self.home}.", f"{x}'s home is in {self.home}.",
                     f"{x} has lived in {self.home} since {self.since}.",
                     f"These days {x} lives in {self.home}."],
            "move": [f"{x} moved from {self.origin} to {self.home}.",
                     f"{x} grew up in {self.origin} but now lives in {self.home}.",
                     f"{x} left {self.origin} for {self.home} in {self.since}."],
            "origin": [f"{x} was born in {self.origin}.", f"{x} comes from {self.origin}."],
            "age": [f"{x} is {self.age} years old.", f"{x} turned {self.age} this year.",
                    f"At {self.age}, {x} is still working."],
            "relative": [f"{x}'s {self.relation} is called {self.relative}.",
                         f"{self.relative} is {x}'s {self.relation}.",
                         f"{x} has {indefinite(self.relation)} named {self.relative}."],
            "job": [f"{x} works as {indefinite(self.job)}.", f"{x} is {indefinite(self.job)}.",
                    f"By trade, {x} is {indefinite(self.job)}."],
            "colour": [f"{x}'s favourite colour is {self.colour}.",
                       f"{x} likes {self.colour} more than any other colour."],
            "pet": [f"{x} keeps {indefinite(self.pet)}.", f"{x} has a pet {self.pet}."],
            "count": [f"{x} has {self.count} {self.things}.",
                      f"{x} owns {self.count} {self.things}."],
        }
        facts = set(rng.sample(sorted(told), rng.randint(3, 5)))
        if "move" in facts:  # it tells the home and the origin: no other sentence for them
            facts -= {"home", "origin"}
        sentences = [rng.choice(told[fact]) for fact in sorted(facts)]
        return sentences, facts | ({"home", "origin"} if "move" in facts else set())

    def question(self, rng: random.Random, facts: set[str]) -> tuple[str, str, str] | None:
        """(question, answer, family) about one of the told ``facts``."""
        x = self.name
        asked = {
            "home": ("place", self.home, [f"Where does {x} live?", f"Where does {x} live now?",
                                          f"In which place does {x} live?"]),
            "move": ("place", self.home, [f"Where did {x} move to?"]),
            "origin": ("place", self.origin, [f"Where is {x} from?", f"Where was {x} born?"]
                       if "move" not in facts else [f"Where did {x} move from?",
                                                     f"Where did {x} live before?"]),
            "age": ("number", str(self.age), [f"How old is {x}?", f"What age is {x}?"]),
            "relative": ("name", self.relative, [f"Who is {x}'s {self.relation}?",
                                                 f"What is the name of {x}'s {self.relation}?"]),
            "job": ("word", self.job, [f"What does {x} do for a living?", f"What is {x}'s job?"]),
            "colour": ("word", self.colour, [f"What is {x}'s favourite colour?"]),
            "pet": ("word", self.pet, [f"What pet does {x} keep?", f"What animal does {x} have?"]),
            "count": ("number", str(self.count), [f"How many {self.things} does {x} have?"]),
        }
        choices = sorted(facts & asked.keys())
        if not choices:
            return None
        family, answer, questions = asked[rng.choice(choices)]
        return rng.choice(questions), answer, family


def comparison(rng: random.Random, people: list[Person], told: dict[str, set[str]]
               ) -> tuple[str, str, str] | None:
    """Who of two people is older or younger (both ages told, and different)."""
    aged = [p for p in people if "age" in told[p.name]]
    pairs = [(a, b) for a in aged for b in aged if a is not b and a.age != b.age]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    older, younger = (a, b) if a.age > b.age else (b, a)
    if rng.random() < 0.5:
        return f"Who is older, {a.name} or {b.name}?", older.name, "comparison"
    return f"Who is younger, {a.name} or {b.name}?", younger.name, "comparison"


def passage(rng: random.Random, pool: dict[str, list[str]]) -> list[Example]:
    """One passage about 2-4 people of ``pool`` and up to QUESTIONS_PER_PASSAGE questions on it."""
    chosen = rng.sample(pool["people"], 2 * rng.randint(2, 4))  # the people, and a relative each
    names, relatives = chosen[::2], chosen[1::2]
    people = [Person(rng, name, pool["places"], relative)
              for name, relative in zip(names, relatives)]
    sentences, told = [], {}
    for person in people:
        said, facts = person.sentences(rng)
        sentences += said
        told[person.name] = facts
    rng.shuffle(sentences)
    context = " ".join(sentences)
    rows: dict[str, Example] = {}
    for _ in range(QUESTIONS_PER_PASSAGE * 3):
        if len(rows) == QUESTIONS_PER_PASSAGE:
            break
        if rng.random() < 0.2:
            asked = comparison(rng, people, told)
        else:
            person = rng.choice(people)
            asked = person.question(rng, told[person.name])
        if asked and asked[0] not in rows:
            question, answer, family = asked
            rows[question] = {"question": question, "context": context, "answer": answer,
                              "family": family}
    return list(rows.values())


def generate(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """``{split: [{"question", "context", "answer", "family"}, ...]}``."""
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    rng = random.Random(seed)
    by_split = pools(rng)
    splits: dict[str, list[Example]] = {}
    for name in ("test", "validation", "train"):
        rows: list[Example] = []
        while len(rows) < sizes.get(name, 0):
            rows += passage(rng, by_split[name])
        splits[name] = rows[:sizes.get(name, 0)]
    return splits


def ensure_splits(out_dir: str | Path, seed: int = 0) -> Path:
    """Generate the passage splits unless all of them already exist."""
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed)
