"""The fonts plates are rendered with.

Real plates use fonts that are not free (Germany's FE-Schrift, the UK's
Charles Wright, the US states' own dies). We use open fonts close to them,
by family:

- din: DIN 1451 Engschrift and its kin, the model of the Nordic, older
  German and many other European plate fonts (Debian fonts-opendin,
  Barlow Condensed, Roboto Condensed, Archivo Narrow);
- gothic: the tall narrow gothics of US and Brazilian plates (League
  Gothic, Oswald, Antonio, Bebas Neue, Fjalla One);
- grotesk: condensed grotesques for the UK's Charles Wright and for plates
  whose font we do not have (Nimbus Sans Narrow, Liberation Sans Narrow,
  DejaVu Sans Condensed);
- caption: what state names, slogans and dealer frames are set in (the
  above plus a script and a serif).

Debian's are installed by `make deps`; the npm ones (@fontsource, SIL Open
Font License 1.1) are fetched at pinned versions and checked against their
sha256 by fetch(). Each font has a weight: how often it is drawn.
"""

import hashlib
import os
import subprocess
import tarfile
import tempfile

# name -> (path, families). Debian packages: fonts-opendin, fonts-roboto-unhinted,
# fonts-urw-base35, fonts-liberation, fonts-dejavu-core, fonts-dejavu-extra,
# fonts-bebas-neue, fonts-lobster.
DEBIAN = {
    "osp-din": ("/usr/share/fonts/truetype/opendin/OSP-DIN.ttf", ("din", "gothic")),
    "roboto-condensed-bold": ("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Bold.ttf", ("din", "grotesk", "caption")),
    "roboto-condensed-medium": ("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Medium.ttf", ("din", "caption")),
    "nimbus-sans-narrow-bold": ("/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf", ("grotesk", "caption")),
    "liberation-sans-narrow-bold": ("/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf", ("grotesk",)),
    "dejavu-sans-condensed-bold": ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf", ("grotesk", "caption")),
    "dejavu-sans-condensed": ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf", ("caption",)),
    "dejavu-serif-bold": ("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf", ("caption",)),
    "bebas-neue-bold": ("/usr/share/fonts/opentype/bebas-neue/BebasNeue-Bold.otf", ("gothic", "caption")),
    "lobster": ("/usr/share/fonts/opentype/lobster/lobster.otf", ("caption",)),
}

DEBIAN_PACKAGES = ["fonts-opendin", "fonts-roboto-unhinted", "fonts-urw-base35", "fonts-liberation",
                   "fonts-dejavu-core", "fonts-dejavu-extra", "fonts-bebas-neue", "fonts-lobster"]

# npm package@version -> (sha256 of the packed .tgz, {name: (file in package, families)}).
NPM = {
    "@fontsource/league-gothic@5.3.0": ("40c34bf02e0c3f88cccdca1851b889fd3780653eb01066ddcdeb9474903e2aa6", {
        "league-gothic": ("package/files/league-gothic-latin-400-normal.woff", ("gothic",)),
    }),
    "@fontsource/oswald@5.3.0": ("27bf46420288bb65bd186638cde54686aa8f9d5dc975b1d597dfe81a7dd472cb", {
        "oswald-500": ("package/files/oswald-latin-500-normal.woff", ("gothic", "caption")),
        "oswald-700": ("package/files/oswald-latin-700-normal.woff", ("gothic",)),
    }),
    "@fontsource/antonio@5.3.0": ("a4bcfad9e90770faf0d4d2680361504033bb659e257375224449af9f8d5a0c6d", {
        "antonio-600": ("package/files/antonio-latin-600-normal.woff", ("gothic",)),
    }),
    "@fontsource/fjalla-one@5.3.0": ("b550bf929a4e2479cdc1aea606748b301d4b67c07cd62ff5c77b7d6086c8ec7d", {
        "fjalla-one": ("package/files/fjalla-one-latin-400-normal.woff", ("gothic", "caption")),
    }),
    "@fontsource/barlow-condensed@5.3.0": ("759fcdd25df64b4ef41653808d849cdb9ba0a520999032ceb137ce035a17e2ea", {
        "barlow-condensed-500": ("package/files/barlow-condensed-latin-500-normal.woff", ("din",)),
        "barlow-condensed-700": ("package/files/barlow-condensed-latin-700-normal.woff", ("din", "gothic")),
    }),
    "@fontsource/archivo-narrow@5.3.0": ("7adbb6ba7514b065ae523907c88b1ab37dc69c002bf3602ab3c8b31d66be8c33", {
        "archivo-narrow-700": ("package/files/archivo-narrow-latin-700-normal.woff", ("din", "grotesk")),
    }),
}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def fetch(dest):
    """Fetches the npm fonts into dest (idempotent): `npm pack` at the pinned
    version, the archive checked against its sha256, the font files kept."""
    os.makedirs(dest, exist_ok=True)
    for pkg, (sha, files) in NPM.items():
        if all(os.path.exists(os.path.join(dest, n + ".woff")) for n in files):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(["npm", "pack", "--silent", pkg], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            tgz = os.path.join(tmp, out)
            got = _sha256(tgz)
            if got != sha:
                raise RuntimeError(f"fonts: {pkg}: sha256 {got}, want {sha}")
            with tarfile.open(tgz) as t:
                for name, (inner, _) in files.items():
                    data = t.extractfile(inner).read()
                    with open(os.path.join(dest, name + ".woff"), "wb") as f:
                        f.write(data)


def available(npm_dir, need_npm=True):
    """The fonts to render with: name -> (path, families). Missing Debian fonts
    are an error (make deps installs them); missing npm fonts are an error
    unless need_npm is false (the recipe's own tests run without them)."""
    out = {}
    for name, (path, fam) in DEBIAN.items():
        if not os.path.exists(path):
            raise RuntimeError(f"fonts: {path} missing: install {' '.join(DEBIAN_PACKAGES)}")
        out[name] = (path, fam)
    for pkg, (_, files) in NPM.items():
        for name, (_, fam) in files.items():
            p = os.path.join(npm_dir, name + ".woff") if npm_dir else ""
            if p and os.path.exists(p):
                out[name] = (p, fam)
            elif need_npm:
                raise RuntimeError(f"fonts: {name} missing in {npm_dir}: run anprtrain.fonts.fetch (make model does)")
    return out


def by_family(fonts, family):
    return sorted(n for n, (_, fam) in fonts.items() if family in fam)
