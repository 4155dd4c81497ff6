"""Generated questions about a passage (``data=passages``, ``data=relations``): short passages
about invented people, and questions whose answer is read out of the passage.

    {"question": "Where does Norzu live?",
     "context": "Norzu moved from Zanvar to Sarme. Kelbi is 41 years old. Norzu is 52 ...",
     "answer": "Sarme", "family": "place"}

Two kinds of passage (``kinds``), their sentences shuffled together, several phrasings of each
fact. The ``family`` field names what a question asks, for per-kind metrics:

- ``facts``: two to four people, a few facts each. Families ``place`` (where someone lives,
  comes from, moved from or to), ``name`` (a relative's name), ``number`` (an age, a count),
  ``word`` (a job, a colour, a pet), ``comparison`` (who of two is older or younger).
- ``relations``: a family of two or three generations told as marriages and children
  ("Dorna is Kelbi's wife.", "Sarme is the son of Kelbi."), then "What is X to Y?". Families
  by the answer: ``spouse`` (husband, wife), ``parent``, ``child``, ``grandparent``,
  ``grandchild``, ``sibling`` and ``in-law`` (father-in-law ... sister-in-law). Most answers
  join two or more sentences.

People and places are invented names, drawn for each split from its own pool (``people``,
``places``: the pool sizes per split). No validation or test name occurs in training. A large
training pool (the default) makes most names occur in one or two passages, so a model must read
them; a small one (a few hundred) makes them recur as names do in real corpora, so a model can
remember them instead, and a tokenizer trained there makes them single pieces.

Splits: ``train``, ``validation``, ``test``, and ``extrapolation``: passages larger than any in
training (five or six people; families with three children a couple), with test's names.
Same seed and settings, same files.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from qa_seq2seq.data.generated import Example, ensure_generated
from qa_seq2seq.errors import ConfigError

SPLIT_SIZES = {"train": 40000, "validation": 1000, "test": 2000, "extrapolation": 2000}
SPLITS = ("test", "validation", "train", "extrapolation")  # the order they are drawn in
# People and places per split; extrapolation draws from test's. Training's are large, so that
# most names occur in one or two passages: a model learns to read names, not to know them.
PEOPLE = {"train": 60000, "validation": 1000, "test": 1000}
PLACES = {"train": 30000, "validation": 500, "test": 500}
KINDS = ("facts", "relations")
QUESTIONS_PER_PASSAGE = 3
# People a facts passage tells of, and children a couple has in a relations passage.
PEOPLE_PER_PASSAGE = {"extrapolation": (5, 6)}, (2, 4)
CHILDREN_PER_COUPLE = {"extrapolation": (3, 3)}, (1, 2)

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


def pools(rng: random.Random, people: Mapping[str, int] = PEOPLE,
          places: Mapping[str, int] = PLACES) -> dict[str, dict[str, list[str]]]:
    """Disjoint people and places for each split: ``{split: {"people": [...], "places": [...]}}``;
    extrapolation's are test's."""
    sizes = {split: (people[split], places[split]) for split in PEOPLE}
    total = [sum(size[i] for size in sizes.values()) for i in (0, 1)]
    names = invented_names(rng, sum(total), (2, 3))
    rng.shuffle(names)
    folks, towns = names[:total[0]], names[total[0]:]
    split: dict[str, dict[str, list[str]]] = {}
    for name, (n_people, n_places) in sizes.items():
        split[name] = {"people": folks[:n_people], "places": towns[:n_places]}
        folks, towns = folks[n_people:], towns[n_places:]
    split["extrapolation"] = split["test"]
    return split


def indefinite(noun: str) -> str:
    """``a baker``, ``an owl``."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


# ----- facts ---------------------------------------------------------------------------------
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


def facts_passage(rng: random.Random, pool: dict[str, list[str]], people: tuple[int, int]
                  ) -> tuple[str, Iterator[tuple[str, str, str]]]:
    """A passage about ``people`` (low, high) people of ``pool``, and the questions it answers:
    ``(context, (question, answer, family), ...)``."""
    chosen = rng.sample(pool["people"], 2 * rng.randint(*people))  # the people, a relative each
    persons = [Person(rng, name, pool["places"], relative)
               for name, relative in zip(chosen[::2], chosen[1::2])]
    sentences, told = [], {}
    for person in persons:
        said, facts = person.sentences(rng)
        sentences += said
        told[person.name] = facts
    rng.shuffle(sentences)

    def ask() -> tuple[str, str, str] | None:
        if rng.random() < 0.2:
            return comparison(rng, persons, told)
        person = rng.choice(persons)
        return person.question(rng, told[person.name])

    # Drawn lazily: the passage stops asking once it has its questions.
    return " ".join(sentences), (q for q in (ask() for _ in range(3 * QUESTIONS_PER_PASSAGE)) if q)


# ----- relations ------------------------------------------------------------------------------
class Member:
    """One person of a family tree."""

    def __init__(self, name: str, male: bool):
        self.name, self.male = name, male
        self.parents: list[Member] = []
        self.children: list[Member] = []
        self.spouse: Member | None = None

    def word(self, male: str, female: str) -> str:
        """The word for this person's sex: ``word("son", "daughter")``."""
        return male if self.male else female

    def siblings(self) -> set[Member]:
        return {c for p in self.parents for c in p.children} - {self}


def relation(x: Member, y: Member) -> tuple[str, str] | None:
    """What ``x`` is to ``y`` (``x`` is ``y``'s ...): (family, answer), or None if nothing the
    generator asks about."""
    if x is y.spouse:
        return "spouse", x.word("husband", "wife")
    if x in y.parents:
        return "parent", x.word("father", "mother")
    if y in x.parents:
        return "child", x.word("son", "daughter")
    if any(x in p.parents for p in y.parents):
        return "grandparent", x.word("grandfather", "grandmother")
    if any(y in p.parents for p in x.parents):
        return "grandchild", x.word("grandson", "granddaughter")
    if x in y.siblings():
        return "sibling", x.word("brother", "sister")
    if y.spouse and x in y.spouse.parents:
        return "in-law", x.word("father-in-law", "mother-in-law")
    if x.spouse and x.spouse in y.children:
        return "in-law", x.word("son-in-law", "daughter-in-law")
    if (y.spouse and x in y.spouse.siblings()) or any(x is s.spouse for s in y.siblings()):
        return "in-law", x.word("brother-in-law", "sister-in-law")
    return None


def family_tree(rng: random.Random, names: list[str], children: tuple[int, int]) -> list[Member]:
    """Two or three generations: a couple, ``children`` (low, high) children, most of them
    married to someone from outside with ``children`` of their own. ``names`` are used in order."""
    fresh = iter(names)
    founder = Member(next(fresh), rng.random() < 0.5)
    members = [founder]

    def marry(person: Member) -> Member:
        spouse = Member(next(fresh), not person.male)
        person.spouse, spouse.spouse = spouse, person
        members.append(spouse)
        return spouse

    def have_children(couple: tuple[Member, Member], count: int) -> list[Member]:
        born = [Member(next(fresh), rng.random() < 0.5) for _ in range(count)]
        for child in born:
            child.parents = list(couple)
            for parent in couple:
                parent.children.append(child)
        members.extend(born)
        return born

    for child in have_children((founder, marry(founder)), rng.randint(*children)):
        if rng.random() < 0.7:
            spouse = marry(child)
            if rng.random() < 0.8:
                have_children((child, spouse), rng.randint(*children))
    return members


def family_sentences(rng: random.Random, members: list[Member]) -> list[str]:
    """A sentence per marriage and per child, each in one of several phrasings."""
    sentences = []
    for person in members:
        if person.spouse and person.male:
            h, w = person.name, person.spouse.name
            sentences.append(rng.choice([f"{w} is {h}'s wife.", f"{h} is {w}'s husband.",
                                         f"{h} and his wife {w} married in "
                                         f"{rng.randint(1950, 2015)}.",
                                         f"{w} and her husband {h} live together."]))
        if person.parents:
            father, mother = sorted(person.parents, key=lambda p: not p.male)
            c, kind = person.name, person.word("son", "daughter")
            sentences.append(rng.choice([
                f"{father.name} and {mother.name} have {indefinite(kind)} called {c}.",
                f"{c} is the {kind} of {father.name} and {mother.name}.",
                f"{c} is {mother.name}'s {kind}.", f"{c} is {father.name}'s {kind}."]))
    rng.shuffle(sentences)
    return sentences


def relations_passage(rng: random.Random, pool: dict[str, list[str]], children: tuple[int, int]
                      ) -> tuple[str, list[tuple[str, str, str]]]:
    """A family's passage and questions on it: ``(context, [(question, answer, family), ...])``."""
    most = (children[1] + 1) ** 2 + 1  # a couple, their children and grandchildren, spouses
    members = family_tree(rng, rng.sample(pool["people"], most), children)
    related = [(x, y, found) for x, y in itertools.permutations(members, 2)
               if (found := relation(x, y))]
    asked = []
    for x, y, (family, answer) in rng.sample(related, min(len(related), 3 * QUESTIONS_PER_PASSAGE)):
        question = rng.choice([f"What is {x.name} to {y.name}?",
                               f"How is {x.name} related to {y.name}?",
                               f"{x.name} is {y.name}'s what?"])
        asked.append((question, answer, family))
    return " ".join(family_sentences(rng, members)), asked


# ----- splits ---------------------------------------------------------------------------------
def passage(rng: random.Random, pool: dict[str, list[str]], kind: str, split: str
            ) -> list[Example]:
    """One passage of ``kind`` from ``pool`` and up to QUESTIONS_PER_PASSAGE distinct questions."""
    if kind == "facts":
        wider, usual = PEOPLE_PER_PASSAGE
        context, asked = facts_passage(rng, pool, wider.get(split, usual))
    else:
        wider, usual = CHILDREN_PER_COUPLE
        context, asked = relations_passage(rng, pool, wider.get(split, usual))
    rows: dict[str, Example] = {}
    for question, answer, family in asked:
        if question not in rows:
            rows[question] = {"question": question, "context": context, "answer": answer,
                              "family": family}
        if len(rows) == QUESTIONS_PER_PASSAGE:
            break
    return list(rows.values())


def generate(seed: int = 0, sizes: Mapping[str, int] | None = None,
             people: Mapping[str, int] | None = None, places: Mapping[str, int] | None = None,
             kinds: Sequence[str] = ("facts",)) -> dict[str, list[Example]]:
    """``{split: [{"question", "context", "answer", "family"}, ...]}``: ``sizes`` rows per split,
    names from ``people`` and ``places`` pools of these sizes per split, passages of ``kinds``
    (``facts``, ``relations``: each passage one of them at random)."""
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    people, places = {**PEOPLE, **(people or {})}, {**PLACES, **(places or {})}
    check_settings(people, places, kinds)
    rng = random.Random(seed)
    by_split = pools(rng, people, places)
    splits: dict[str, list[Example]] = {}
    for name in SPLITS:
        rows: list[Example] = []
        while len(rows) < sizes.get(name, 0):
            kind = kinds[0] if len(kinds) == 1 else rng.choice(list(kinds))
            rows += passage(rng, by_split[name], kind, name)
        splits[name] = rows[:sizes.get(name, 0)]
    return splits


def check_settings(people: Mapping[str, int], places: Mapping[str, int],
                   kinds: Sequence[str]) -> None:
    """Refuse settings the generator cannot meet, naming the key."""
    if not kinds or set(kinds) - set(KINDS):
        raise ConfigError(f"data.generate.kinds={list(kinds)}: choose from {list(KINDS)}")
    smallest = 2 * max(PEOPLE_PER_PASSAGE[0]["extrapolation"]) if "facts" in kinds else 0
    if "relations" in kinds:
        smallest = max(smallest, (max(CHILDREN_PER_COUPLE[0]["extrapolation"]) + 1) ** 2 + 1)
    for key, sizes, least in (("people", people, smallest), ("places", places, 2)):
        if unknown := set(sizes) - set(PEOPLE):
            raise ConfigError(f"data.generate.{key}: no split {sorted(unknown)[0]!r}; the pools "
                              f"are train, validation and test (extrapolation uses test's)")
        for split, size in sizes.items():
            if not isinstance(size, int) or size < least:
                raise ConfigError(f"data.generate.{key}.{split}={size}: a passage needs at least "
                                  f"{least} {key} from the pool; give an integer >= {least}")


def ensure_splits(out_dir: str | Path, seed: int = 0, people: Mapping[str, int] | None = None,
                  places: Mapping[str, int] | None = None, kinds: Sequence[str] = ("facts",)
                  ) -> Path:
    """Generate the passage splits unless they exist with these settings."""
    people, places = {**PEOPLE, **(people or {})}, {**PLACES, **(places or {})}
    check_settings(people, places, kinds)
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed, people=people, places=places,
                            kinds=list(kinds))
