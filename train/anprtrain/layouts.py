"""What plates look like: layouts of registrations and the styles they are
issued in, per country.

A layout draws a PlateSpec: the registration as rows of character groups
(the label is the groups' characters, without separators, band or
captions), what separates the groups (a space, a dash, a dot, a seal or an
emblem), the plate's shape and colours, its band and its captions. The
countries are the EU/EEA ones, Switzerland and the UK with their current
layouts and EU band codes, the US states' common layouts, and Brazil (the
old grey plates and Mercosur). One- and two-row forms.

The recogniser must read what is on the plate, not what a country's format
would prefer, so a share of plates of every style carry random strings
(random_groups): no character or length is learnt to be more likely in one
style than another.
"""

from dataclasses import dataclass, field

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
CHARSET = DIGITS + LETTERS  # the recogniser's classes after the CTC blank

WHITE = (246, 246, 240)
BLACK = (18, 18, 20)
YELLOW = (247, 209, 23)
EU_BLUE = (0, 51, 153)
GREY = (178, 180, 178)


@dataclass
class Caption:
    text: str
    pos: str  # "top" or "bottom": the band above or below the registration
    size: float  # height as a share of the plate's height
    color: tuple
    family: str = "caption"


@dataclass
class PlateSpec:
    country: str
    rows: list  # rows of groups: [["AB", "12345"]] or [["AB"], ["12345"]]
    seps: list  # per row, what stands between its groups
    aspect: float  # width / height
    char_h: float  # a row's character height as a share of the plate's height
    bg: tuple = WHITE
    bg_kind: str = "solid"  # solid, gradient, graphic
    bg2: tuple = WHITE
    fg: tuple = BLACK
    band: str = ""  # "", "eu", "flag", "green" (UK zero emission), "brasil"
    band_code: str = ""
    right_band: str = ""  # FR, IT, PT: a blue band at the right with small text
    border: tuple = None
    family: str = "din"
    captions: list = field(default_factory=list)
    emboss: bool = False
    mono: bool = False
    stacked: str = ""  # small stacked characters at the right (US), not part of the label
    kind: str = ""  # e.g. "us", "eu", for the statistics

    def label_rows(self):
        return ["".join(r) for r in self.rows]

    def label(self):
        return "".join(self.label_rows())


def pick(rng, xs, p=None):
    if p is not None:
        tot = sum(p)
        p = [x / tot for x in p]
    return xs[int(rng.choice(len(xs), p=p))]


def fill(rng, pattern, letters=LETTERS):
    """A string for a pattern of L (letter), D (digit) and A (either)."""
    out = []
    for c in pattern:
        if c == "L":
            out.append(letters[int(rng.integers(len(letters)))])
        elif c == "D":
            out.append(DIGITS[int(rng.integers(10))])
        elif c == "A":
            out.append(CHARSET[int(rng.integers(len(CHARSET)))])
        else:
            out.append(c)
    return "".join(out)


def random_groups(rng, lo=2, hi=9):
    """A random registration: lo..hi characters in one to three groups, each
    group letters, digits or a mix, in any order."""
    n = int(rng.integers(lo, hi + 1))
    k = 1 if n <= 3 else int(pick(rng, [1, 2, 3], [0.3, 0.5, 0.2]))
    k = min(k, n)
    cuts = sorted(rng.choice(range(1, n), size=k - 1, replace=False).tolist()) if k > 1 else []
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    groups = []
    for s in sizes:
        kind = pick(rng, "LDA", [0.4, 0.4, 0.2])
        groups.append(fill(rng, kind * s))
    return groups


# EU/EEA, Switzerland and the UK: (band code, [(weight, groups, separators)],
# extra style). Patterns follow each country's current layout and the common
# previous one; "E" in a separator list is the country's emblem or seal
# between groups, "S" a sticker.
EUROPE = {
    "AT": ("A", [(1, ["LL", "DDDLL"], ["E"]), (1, ["L", "DDDDL"], ["E"]), (1, ["LL", "DDDDL"], ["E"])], {}),
    "BE": ("B", [(1, ["D", "LLL", "DDD"], ["-", "-"])], {"fg": (170, 20, 30)}),
    "BG": ("BG", [(1, ["LL", "DDDD", "LL"], [" ", " "]), (1, ["L", "DDDD", "LL"], [" ", " "])], {}),
    "HR": ("HR", [(1, ["LL", "DDD", "LL"], ["E", "-"]), (1, ["LL", "DDDD", "L"], ["E", "-"])], {}),
    "CY": ("CY", [(1, ["LLL", "DDD"], [" "])], {}),
    "CZ": ("CZ", [(1, ["DLA", "DDDD"], [" "]), (1, ["DLD", "DDDD"], [" "])], {}),
    "DK": ("DK", [(1, ["LL", "DD", "DDD"], [" ", " "])], {"border": (200, 30, 40)}),
    "EE": ("EST", [(1, ["DDD", "LLL"], [" "])], {}),
    "FI": ("FIN", [(3, ["LLL", "DDD"], ["-"]), (1, ["LL", "DDD"], ["-"]), (1, ["LLL", "DD"], ["-"])], {}),
    "FR": ("F", [(1, ["LL", "DDD", "LL"], ["-", "-"])], {"right_band": "FR"}),
    "DE": ("D", [(2, ["LL", "LL", "DDDD"], ["E", " "]), (2, ["L", "LL", "DDD"], ["E", " "]),
                 (1, ["LLL", "L", "DDDD"], ["E", " "]), (1, ["L", "L", "DDDD"], ["E", " "]),
                 (1, ["LL", "L", "DDE"], ["E", " "])], {}),
    "GR": ("GR", [(1, ["LLL", "DDDD"], ["-"])], {}),
    "HU": ("H", [(1, ["LLL", "DDD"], ["-"]), (1, ["LL", "LL", "DDD"], [" ", "-"])], {}),
    "IE": ("IRL", [(1, ["DDD", "L", "DDDDD"], ["-", "-"]), (1, ["DD", "LL", "DDDD"], ["-", "-"]),
                   (1, ["DDD", "LL", "DDD"], ["-", "-"])], {}),
    "IT": ("I", [(1, ["LL", "DDD", "LL"], [" ", " "])], {"right_band": "IT"}),
    "LV": ("LV", [(1, ["LL", "DDDD"], ["-"]), (1, ["L", "DDDD"], ["-"])], {}),
    "LT": ("LT", [(1, ["LLL", "DDD"], [" "])], {}),
    "LU": ("L", [(1, ["LL", "DDDD"], [" "]), (1, ["DDDDD"], [])], {"bg": YELLOW}),
    "MT": ("M", [(1, ["LLL", "DDD"], [" "])], {}),
    "NL": ("NL", [(1, ["LL", "DDD", "L"], ["-", "-"]), (1, ["L", "DDD", "LL"], ["-", "-"]),
                  (1, ["LLL", "DD", "L"], ["-", "-"]), (1, ["D", "LLL", "DD"], ["-", "-"]),
                  (1, ["DD", "LLL", "D"], ["-", "-"]), (1, ["LL", "DD", "LL"], ["-", "-"]),
                  (1, ["D", "LL", "DDD"], ["-", "-"])], {"bg": YELLOW}),
    "PL": ("PL", [(2, ["LL", "DDDDD"], [" "]), (2, ["LLL", "DDDD"], [" "]), (1, ["LL", "DDDDL"], [" "]),
                  (1, ["LLL", "DDDLL"], [" "])], {}),
    "PT": ("P", [(1, ["LL", "DD", "LL"], ["-", "-"]), (1, ["DD", "LL", "DD"], ["-", "-"]),
                 (1, ["DD", "DD", "LL"], ["-", "-"])], {"right_band": "PT"}),
    "RO": ("RO", [(1, ["L", "DDD", "LLL"], [" ", " "]), (1, ["LL", "DD", "LLL"], [" ", " "])], {}),
    "SK": ("SK", [(1, ["LL", "DDD", "LL"], ["E", ""]), (1, ["LL", "DDD", "LL"], ["-", ""])], {}),
    "SI": ("SLO", [(1, ["LL", "LL", "DDD"], ["E", "-"]), (1, ["LL", "DD", "DLL"], ["E", "-"])], {}),
    "ES": ("E", [(1, ["DDDD", "LLL"], [" "])], {}),
    "SE": ("S", [(3, ["LLL", "DDD"], [" "]), (2, ["LLL", "DDL"], [" "])], {}),
    "NO": ("N", [(3, ["LL", "DDDDD"], [" "]), (1, ["LL", "DDDD"], [" "])], {}),
    "IS": ("IS", [(1, ["LL", "LDD"], [" "]), (1, ["LL", "DDD"], [" "])], {}),
    "LI": ("FL", [(1, ["LL", "DDDDD"], [" "])], {"bg": BLACK, "fg": WHITE}),
    "CH": ("CH", [(1, ["LL", "DDDDDD"], [" "]), (1, ["LL", "DDDD"], [" "])], {}),
    "GB": ("UK", [(3, ["LLDD", "LLL"], [" "]), (1, ["LDDD", "LLL"], [" "]), (1, ["LLL", "DDDL"], [" "])], {}),
}

# Where a country's plate fonts come from: DIN-like in most of Europe and
# the Nordics, a grotesque like Charles Wright in the UK.
EUROPE_FAMILY = {"GB": "grotesk", "IE": "grotesk", "CY": "grotesk", "MT": "grotesk"}

NORDIC = ("NO", "SE", "DK", "FI")


def europe(rng, country=None, two_row=None):
    if country is None:
        # The Nordic countries a garage here sees most, then all others.
        country = pick(rng, list(NORDIC) + ["DE", "PL", "other"], [4, 4, 2, 2, 2, 1.5, 6])
        if country == "other":
            country = pick(rng, [c for c in EUROPE if c not in NORDIC + ("DE", "PL")])
    code, layouts, extra = EUROPE[country]
    _, groups, seps = pick(rng, layouts, [w for w, _, _ in layouts])
    groups = [fill(rng, g) for g in groups]
    seps = [resolve_sep(rng, s) for s in seps]
    if country == "SE" and rng.random() < 0.4:
        seps = ["S"]  # older Swedish plates: the inspection sticker between the groups
    elif rng.random() < 0.05:
        seps = ["S" if s in (" ", "") else s for s in seps]
    if rng.random() < 0.25:
        groups = random_groups(rng)
        seps = [pick(rng, [" ", "-", "", "E"], [4, 2, 1, 1]) for _ in groups[1:]]
    if two_row is None:
        two_row = rng.random() < 0.1
    bg = extra.get("bg", WHITE)
    if country == "NO" and rng.random() < 0.15:
        bg = (40, 140, 70)  # vans: black on green
    if country in ("SE", "NO", "DK") and rng.random() < 0.07:
        bg = YELLOW  # taxis, Danish vans
    if country == "GB" and rng.random() < 0.5:
        bg = YELLOW  # rear plates
    band = "eu"
    if country == "NO" and rng.random() < 0.5:
        band = "flag" if rng.random() < 0.6 else ""
    if country in ("CH", "LI"):
        band = ""
    if country == "GB":
        band = pick(rng, ["", "eu", "flag", "green"], [3, 2, 1, 1])
    if rng.random() < 0.08:
        band = ""
    spec = PlateSpec(country=country, rows=[groups], seps=[seps], aspect=520 / 110, char_h=pick(rng, [0.66, 0.7, 0.74]),
                     bg=bg, fg=extra.get("fg", BLACK), band=band, band_code=code if band else "",
                     right_band=extra.get("right_band", ""), border=extra.get("border"),
                     family=EUROPE_FAMILY.get(country, pick(rng, ["din", "grotesk"], [5, 1])),
                     mono=rng.random() < 0.3, kind="eu")
    if country == "GB" and band == "eu":
        spec.band_code = pick(rng, ["UK", "GB"])
    if two_row and len(groups) >= 2:
        k = max(1, len(groups) // 2)
        spec.rows = [groups[:k], groups[k:]]
        spec.seps = [seps[:k - 1], seps[k:]]
        spec.aspect = pick(rng, [280 / 200, 340 / 200, 240 / 130, 190 / 170])
        spec.char_h = 0.36
    if rng.random() < 0.2:
        spec.captions.append(dealer_caption(rng))
    return spec


def resolve_sep(rng, s):
    return s


US_STATES = ["ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO", "CONNECTICUT", "DELAWARE",
             "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA", "IOWA", "KANSAS", "KENTUCKY",
             "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN", "MINNESOTA", "MISSISSIPPI",
             "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA", "NEW HAMPSHIRE", "NEW JERSEY", "NEW MEXICO",
             "NEW YORK", "NORTH CAROLINA", "NORTH DAKOTA", "OHIO", "OKLAHOMA", "OREGON", "PENNSYLVANIA",
             "RHODE ISLAND", "SOUTH CAROLINA", "SOUTH DAKOTA", "TENNESSEE", "TEXAS", "UTAH", "VERMONT",
             "VIRGINIA", "WASHINGTON", "WEST VIRGINIA", "WISCONSIN", "WYOMING"]
US_SLOGANS = ["THE LONE STAR STATE", "SUNSHINE STATE", "EMPIRE STATE", "GRAND CANYON STATE", "LAND OF LINCOLN",
              "THE FIRST STATE", "GARDEN STATE", "LIVE FREE OR DIE", "EVERGREEN STATE", "DISCOVER", "DMV.CA.GOV",
              "FAMOUS POTATOES", "PEACH STATE", "SHOW ME STATE", "THE BEEHIVE STATE", "BIG SKY COUNTRY",
              "TOO GREAT FOR ONE STATE", "AMERICA'S DAIRYLAND", "SPORTSMAN'S PARADISE", "WILD WONDERFUL",
              "EXPLORE MINNESOTA", "PURE MICHIGAN", "VIRGINIA IS FOR LOVERS", "LAND OF ENCHANTMENT",
              "VISIT", "GOD BLESS AMERICA", "IN GOD WE TRUST", "FIRST IN FLIGHT", "OCEAN STATE", "BATTLE BORN"]
US_FORMATS = [(3, ["DLLL", "DDD"]), (3, ["LLL", "DDDD"]), (2, ["LLL", "DDD"]), (2, ["DDD", "LLL"]),
              (1, ["DLL", "DDDD"]), (1, ["LL", "DDDDD"]), (1, ["DDD", "DDD"]), (1, ["LLL", "DDDL"]),
              (1, ["DDDD", "LL"]), (1, ["LL", "LDDDD"]), (1, ["DLLLDDD"]), (1, ["LLLDDDD"]), (1, ["DDDLLL"])]
US_INK = [(18, 30, 90), (20, 20, 24), (150, 20, 30), (20, 90, 40), (100, 20, 40), (30, 60, 150), (40, 40, 40)]


def us(rng):
    if rng.random() < 0.15:
        groups = random_groups(rng, 2, 7)  # vanity plates
        seps = [pick(rng, [" ", "", "-", "E"]) for _ in groups[1:]]
    else:
        _, gs = pick(rng, US_FORMATS, [w for w, _ in US_FORMATS])
        groups = [fill(rng, g) for g in gs]
        seps = [pick(rng, [" ", "-", "E", "dot", "", "S"], [4, 2, 2, 1, 1, 1]) for _ in groups[1:]]
    dark = rng.random() < 0.1
    bg = WHITE if not dark else pick(rng, [(20, 20, 24), (20, 40, 90), (90, 20, 30)])
    fg = pick(rng, US_INK) if not dark else pick(rng, [WHITE, YELLOW])
    if not dark and rng.random() < 0.15:
        bg = pick(rng, [(250, 230, 120), (235, 240, 250), (250, 250, 250), (225, 235, 215)])
    state = pick(rng, US_STATES)
    caps = [Caption(state if rng.random() < 0.8 else state.title(), "top", float(rng.uniform(0.12, 0.2)),
                    pick(rng, US_INK) if not dark else WHITE)]
    if rng.random() < 0.7:
        caps.append(Caption(pick(rng, US_SLOGANS), "bottom", float(rng.uniform(0.07, 0.12)),
                            pick(rng, US_INK) if not dark else WHITE))
    if rng.random() < 0.35:
        caps.append(dealer_caption(rng))
    spec = PlateSpec(country="US", rows=[groups], seps=[seps], aspect=305 / 152, char_h=float(rng.uniform(0.42, 0.52)),
                     bg=bg, fg=fg, bg_kind=pick(rng, ["solid", "gradient", "graphic"], [3, 2, 3]),
                     bg2=pick(rng, [(200, 220, 245), (250, 220, 190), (210, 235, 210), (245, 245, 245), (250, 200, 200)]),
                     family=pick(rng, ["gothic", "din", "grotesk"], [6, 2, 1]), captions=caps,
                     emboss=rng.random() < 0.4, mono=rng.random() < 0.4, kind="us")
    if rng.random() < 0.06:
        spec.stacked = fill(rng, pick(rng, ["LL", "LLL", "DV"]))
    return spec


BR_CITIES = ["SP - SAO PAULO", "RJ - RIO DE JANEIRO", "MG - BELO HORIZONTE", "PR - CURITIBA", "RS - PORTO ALEGRE",
             "BA - SALVADOR", "SC - FLORIANOPOLIS", "GO - GOIANIA", "PE - RECIFE", "CE - FORTALEZA", "DF - BRASILIA"]


def brazil(rng):
    if rng.random() < 0.5:
        groups = [fill(rng, "LLL"), fill(rng, "DDDD")]
        spec = PlateSpec(country="BR", rows=[groups], seps=[["-"]], aspect=400 / 130, char_h=0.5,
                         bg=GREY, fg=BLACK, family=pick(rng, ["din", "gothic"]), mono=True, kind="br-old",
                         captions=[Caption(pick(rng, BR_CITIES), "top", 0.16, BLACK, "din")])
        if rng.random() < 0.15:
            spec.bg, spec.fg = (160, 30, 30), WHITE  # commercial
    else:
        groups = [fill(rng, "LLLDLDD")]
        spec = PlateSpec(country="BR", rows=[groups], seps=[[]], aspect=400 / 130, char_h=0.5,
                         bg=WHITE, fg=BLACK if rng.random() < 0.85 else (170, 20, 30), band="brasil",
                         family=pick(rng, ["din", "gothic"]), mono=True, kind="br-mercosur")
    if rng.random() < 0.2:
        g = random_groups(rng, 5, 8)
        spec.rows, spec.seps = [g], [["-"] * (len(g) - 1)]
    if rng.random() < 0.2:
        spec.captions.append(dealer_caption(rng))
    return spec


def motorcycle(rng):
    """Small two-row plates (motorcycles, mopeds, tractors, square plates)."""
    country = pick(rng, ["NO", "SE", "DK", "FI", "DE", "GB", "US", "other"], [2, 2, 1, 1, 1, 1, 1, 2])
    if country == "US":
        spec = us(rng)
        if len("".join(spec.rows[0])) >= 4:
            g = "".join(spec.rows[0])
            k = len(g) // 2
            spec.rows, spec.seps = [[g[:k]], [g[k:]]], [[], []]
        spec.aspect, spec.char_h = 180 / 100, 0.34
        spec.captions = spec.captions[:1]
        return spec
    spec = europe(rng, None if country == "other" else country, two_row=True)
    if len(spec.rows) == 1:
        g = "".join(spec.rows[0])
        k = max(1, len(g) // 2)
        spec.rows, spec.seps = [[g[:k]], [g[k:]]], [[], []]
        spec.aspect, spec.char_h = 1.4, 0.36
    return spec


def dealer_caption(rng):
    words = ["AUTO", "MOTORS", "BIL", "CARS", "FORD", "TOYOTA", "HONDA", "CHEVROLET", "VOLVO", "BILCENTER",
             "AUTOHAUS", "DEALER", "SALES", "SERVICE", "MØLLER", "HEDIN", "BILIA", "NISSAN", "KIA", "SUBARU",
             "WWW.AUTO.COM", "CITY", "NORTH", "VALLEY", "SACRAMENTO", "OSLO", "STOCKHOLM", "BERGEN", "GÖTEBORG"]
    n = int(rng.integers(1, 4))
    text = " ".join(pick(rng, words) for _ in range(n))
    return Caption(text, pick(rng, ["top", "bottom"], [1, 3]), float(rng.uniform(0.08, 0.14)),
                   pick(rng, [WHITE, (220, 220, 220), (200, 170, 60)]), "caption")


KINDS = [("europe", europe, 0.5), ("us", us, 0.3), ("brazil", brazil, 0.08), ("motorcycle", motorcycle, 0.12)]


def draw(rng):
    """A random plate of any kind, in the mix the training uses."""
    _, fn, _ = pick(rng, KINDS, [w for _, _, w in KINDS])
    return fn(rng)
