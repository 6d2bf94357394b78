"""The license is declared (AGPL-3.0-or-later) and every web page links to the source, as the
AGPL expects of a network service (README "License")."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from shared import SOURCE_URL

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_declares_agpl_3_or_later():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "AGPL-3.0-or-later"
    assert project["license-files"] == ["LICENSE"]


def test_license_file_is_the_full_agpl_3():
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:7] == ["GNU", "AFFERO", "GENERAL", "PUBLIC", "LICENSE", "Version", "3,"]
    assert "13. Remote Network Interaction; Use with the GNU General Public License." in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) == 661


def test_readme_has_a_license_section_naming_the_source():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## License\n", 1)[1].split("\n## ", 1)[0]
    assert "AGPL-3.0-or-later" in section
    assert SOURCE_URL in section


def test_every_page_footer_links_to_the_source(client):
    for path in ["/", "/boards", "/login", "/signup"]:
        html = client.get(path).get_data(as_text=True)
        footer = re.search(r"<footer[^>]*>(.*?)</footer>", html, re.S)
        assert footer is not None, path
        assert f'<a href="{SOURCE_URL}">source</a>' in footer.group(1), path
