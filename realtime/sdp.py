"""Make a provider's SDP answer acceptable to aiortc (pure text in, text out).

OpenAI's documented answer carries the ICE credentials, DTLS fingerprint and
setup role only once (at session level or in the first media section) and no
direction attribute. aiortc validates every media section on its own and,
without a direction, neither sends nor receives. `normalize_answer` copies
those transport attributes into every media section that lacks them and adds
the direction that answers the offer's, keeping mids and BUNDLE intact.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_TRANSPORT_ATTRS = ("ice-ufrag", "ice-pwd", "fingerprint", "setup")


@dataclass(frozen=True)
class _Section:
    lines: tuple[str, ...]  # first line is "m=..." for media sections

    @property
    def kind(self) -> str:
        return self.lines[0][2:].split(" ", 1)[0]

    def attrs(self, name: str) -> tuple[str, ...]:
        prefix = f"a={name}:"
        return tuple(line for line in self.lines if line.startswith(prefix))

    @property
    def mid(self) -> str | None:
        found = self.attrs("mid")
        return found[0].split(":", 1)[1].strip() if found else None

    @property
    def direction(self) -> str | None:
        for line in self.lines:
            if line[2:] in DIRECTIONS and line.startswith("a="):
                return line[2:]
        return None


def _split(sdp: str) -> tuple[_Section, list[_Section]]:
    lines = [line.rstrip("\r") for line in sdp.strip().split("\n")]
    lines = [line for line in lines if line]
    if not lines or not lines[0].startswith("v="):
        raise ValueError("not an SDP description (it must start with 'v=')")
    session: list[str] = []
    media: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return _Section(tuple(session)), [_Section(tuple(m)) for m in media]


def _insert_after_header(section: _Section, extra: list[str]) -> _Section:
    """Insert attribute lines after the m= line and its c=/b= lines."""
    lines = list(section.lines)
    at = 1
    while at < len(lines) and lines[at][:2] in ("i=", "c=", "b=", "k="):
        at += 1
    return _Section(tuple(lines[:at] + extra + lines[at:]))


def normalize_answer(offer_sdp: str, answer_sdp: str) -> str:
    """Return `answer_sdp` with transport attributes and directions in every media section.

    Raises ValueError with a clear message if either text is not SDP or the
    answer carries no ICE credentials at all.
    """
    _, offer_media = _split(offer_sdp)
    session, media = _split(answer_sdp)

    # Where the answer states each transport attribute once: session level first,
    # then the first media section that has it.
    source: dict[str, tuple[str, ...]] = {}
    for attr in _TRANSPORT_ATTRS:
        for section in [session, *media]:
            found = section.attrs(attr)
            if found:
                source[attr] = found
                break
    if "ice-ufrag" not in source or "ice-pwd" not in source:
        raise ValueError("SDP answer has no ICE credentials (a=ice-ufrag / a=ice-pwd)")

    offer_direction_by_mid = {s.mid: s.direction for s in offer_media if s.mid is not None}
    fixed: list[_Section] = []
    for index, section in enumerate(media):
        extra: list[str] = []
        if section.kind in ("audio", "video") and section.direction is None:
            offered = offer_direction_by_mid.get(section.mid) if section.mid is not None else None
            if offered is None and index < len(offer_media):
                offered = offer_media[index].direction
            extra.append("a=" + _ANSWER_DIRECTION.get(offered or "sendrecv", "sendrecv"))
        for attr in _TRANSPORT_ATTRS:
            if not section.attrs(attr) and attr in source:
                extra.extend(source[attr])
        fixed.append(_insert_after_header(section, extra) if extra else section)

    out = list(session.lines)
    for section in fixed:
        out.extend(section.lines)
    return "\r\n".join(out) + "\r\n"
