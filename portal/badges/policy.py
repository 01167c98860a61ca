"""Each school's badge policy: which grades may sign in with a badge, which must add a second
factor (and which), whether the in-browser scanner is allowed (and from which networks), and
when badges expire.

Defaults (a school without a BadgePolicy row): pre-K to grade 2 sign in with the badge alone,
grades 3 to 5 add a PIN, older students and staff do not use badges, the browser scanner is off
(a photo of a badge would work from any browser), and badges follow PORTAL_BADGE_EXPIRES.
A school that turns the browser scanner on may limit it to its own networks, so that a badge, or
a photo of one, signs nobody in from home; its enrolled kiosk devices carry their own credential
and work anywhere (a field trip).
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.orm import Session

from portal import audit
from portal.badges.expiry import parse_expiry, utcnow
from portal.models import BadgePolicy, FactorKind, Person, Role, School

# OneRoster 1.1 grade codes, in order.
GRADES = ("IT", "PR", "PK", "TK", "KG", "01", "02", "03", "04", "05", "06", "07", "08", "09",
          "10", "11", "12", "13", "PS", "UG", "Other")
DEFAULT_GRADES = ("PK", "TK", "KG", "01", "02", "03", "04", "05")
DEFAULT_SECOND_FACTOR_GRADES = ("03", "04", "05")
DEFAULT_FACTOR = FactorKind.pin
MAX_NETWORKS = 32


class PolicyError(ValueError):
    """A policy setting that cannot be used; the message is one plain line."""


@dataclass(frozen=True)
class EffectivePolicy:
    school_id: int
    grades: frozenset[str]
    second_factor_grades: frozenset[str]
    factor: FactorKind
    allow_browser_scanner: bool
    expires_on: str | None  # None: PORTAL_BADGE_EXPIRES
    scanner_networks: tuple[str, ...] = ()  # canonical; empty: the browser scanner works anywhere

    def allows(self, person: Person) -> bool:
        """True when the person may sign in with a badge at this school."""
        return (person.role is Role.student and person.enabled
                and bool(self.grades.intersection(person.grade_list)))

    def factor_for(self, person: Person) -> FactorKind | None:
        """The second factor the person must add, or None (strictest of their grades)."""
        if self.second_factor_grades.intersection(person.grade_list):
            return self.factor
        return None

    def scanner_works_from(self, address: str | None) -> bool:
        """True when the browser scanner may be used from this client address."""
        if not self.scanner_networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:    # a dual-stack server's view of an IPv4 client
            ip = ip.ipv4_mapped
        return any(ip in network for network in _networks(self.scanner_networks))

    def describe(self, default_expires: str | None = None) -> str:
        """The policy in a line; `default_expires`: the district's PORTAL_BADGE_EXPIRES, shown
        when the school has no date of its own."""
        def listed(grades):
            return ", ".join(g for g in GRADES if g in grades) or "none"
        expires = self.expires_on or (f"{default_expires} (the district's, PORTAL_BADGE_EXPIRES)"
                                      if default_expires else "as PORTAL_BADGE_EXPIRES says")
        # Allowed with no network named: a badge, or a photo of one, works from anywhere; say so.
        networks = (f"; scanner networks {', '.join(self.scanner_networks)}" if self.scanner_networks
                    else " from any network" if self.allow_browser_scanner else "")
        return (f"badges for {listed(self.grades)}; second factor ({self.factor.value}) for "
                f"{listed(self.second_factor_grades)}; browser scanner "
                f"{'allowed' if self.allow_browser_scanner else 'off'}{networks}; "
                f"badges expire {expires}")

    @property
    def fingerprint(self) -> str:
        """A short name for these settings. The policy form carries it (set_policy's `expect`)
        and sends every setting: one from a page older than the policy (another admin changed it
        since) would set back what they changed, their scanner networks among it."""
        written = "|".join([",".join(sorted(self.grades)), ",".join(sorted(self.second_factor_grades)),
                            self.factor.value, str(self.allow_browser_scanner), self.expires_on or "",
                            ",".join(sorted(self.scanner_networks))])
        return hashlib.sha256(written.encode()).hexdigest()[:16]


class PolicyChanged(PolicyError):
    """The policy changed since the page whose form asks to change it; `now`: as it is now."""

    def __init__(self, now: EffectivePolicy):
        super().__init__("someone changed this school's badge policy since you opened this page")
        self.now = now


@lru_cache(maxsize=256)
def _networks(written: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in written)


def parse_grades(text: str | None) -> frozenset[str]:
    """Read "KG,01,2" into OneRoster codes, refusing unknown grades."""
    result = set()
    for raw in (text or "").replace(" ", ",").split(","):
        raw = raw.strip()
        if not raw:
            continue
        code = f"{int(raw):02d}" if raw.isascii() and raw.isdigit() and len(raw) <= 2 else raw.upper()
        code = "Other" if code == "OTHER" else code
        if code not in GRADES:
            raise PolicyError(f"{raw!r} is not a OneRoster grade ({', '.join(GRADES)})")
        result.add(code)
    return frozenset(result)


def parse_networks(text: str | None) -> tuple[str, ...]:
    """Read "10.20.0.0/16, 192.0.2.7 2001:db8::/48" into canonical networks (an address alone
    is one host), refusing anything else: a typo must not open the scanner to the world."""
    text = text or ""
    if len(text) > 4000:
        raise PolicyError(f"that is too long for a list of networks (at most {MAX_NETWORKS})")
    found: list[str] = []
    for raw in text.replace(",", " ").split():
        shown = repr(raw[:45]) + ("..." if len(raw) > 45 else "")
        if len(raw) > 50 or not raw.isascii() or not raw.isprintable() or "%" in raw:
            raise PolicyError(f"{shown} is not a network (write one like 10.20.0.0/16 or 192.0.2.7)")
        try:
            network = ipaddress.ip_network(raw)
        except ValueError:
            try:
                meant = ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise PolicyError(f"{shown} is not a network (write one like 10.20.0.0/16 "
                                  f"or 192.0.2.7)") from None
            raise PolicyError(f"{shown} names an address inside a network: write the network "
                              f"({meant}) or the address alone") from None
        if network.version == 6 and network.prefixlen >= 96 and network.network_address.ipv4_mapped:
            # ::ffff:10.20.0.0/112 is 10.20.0.0/16: addresses are compared as IPv4 (see below).
            network = ipaddress.ip_network(f"{network.network_address.ipv4_mapped}/{network.prefixlen - 96}")
        if str(network) not in found:
            found.append(str(network))
        if len(found) > MAX_NETWORKS:
            raise PolicyError(f"at most {MAX_NETWORKS} scanner networks (use wider ones)")
    return tuple(found)


def _split(text: str) -> frozenset[str]:
    return frozenset(g for g in (text or "").split(",") if g)


def policy_for(db: Session, school_id: int) -> EffectivePolicy:
    """The school's policy, or the defaults when it has none."""
    return policy_from_row(school_id, db.get(BadgePolicy, school_id))


def policy_from_row(school_id: int, row: BadgePolicy | None) -> EffectivePolicy:
    """The policy a school's BadgePolicy row (None: no row) sets."""
    if row is None:
        return EffectivePolicy(school_id, frozenset(DEFAULT_GRADES),
                               frozenset(DEFAULT_SECOND_FACTOR_GRADES), DEFAULT_FACTOR, False, None)
    return EffectivePolicy(school_id, _split(row.grades), _split(row.second_factor_grades),
                           row.factor, row.allow_browser_scanner, row.expires_on,
                           tuple(n for n in (row.scanner_networks or "").split(",") if n))


def set_policy(db: Session, school: School, *, grades: str | None = None,
               second_factor_grades: str | None = None, factor: str | None = None,
               allow_browser_scanner: bool | None = None, expires_on: str | None = None,
               scanner_networks: str | None = None, actor: Person | None = None,
               clock=utcnow, expect: str | None = None) -> EffectivePolicy:
    """Change the given settings of a school's policy (the others keep their value); the audit
    log records the new policy and who set it (`actor`; None: the command line).

    `expect`: the fingerprint of the policy as the admin's page showed it; PolicyChanged, and
    nothing changes, when the policy is another now."""
    if expect is not None:
        # Read under a lock (PostgreSQL): a change made at the same moment waits for this one.
        current = policy_from_row(school.id, db.get(BadgePolicy, school.id, with_for_update=True))
        if expect != current.fingerprint:
            raise PolicyChanged(current)
    else:
        current = policy_for(db, school.id)
    new_grades = parse_grades(grades) if grades is not None else current.grades
    new_second = (parse_grades(second_factor_grades) if second_factor_grades is not None
                  else current.second_factor_grades)
    if grades is not None and second_factor_grades is None:
        new_second = new_second & new_grades
    extra = new_second - new_grades
    if extra:
        raise PolicyError(f"second-factor grades must also be badge grades: {', '.join(sorted(extra))}")
    try:
        new_factor = FactorKind(factor) if factor is not None else current.factor
    except ValueError:
        raise PolicyError("the second factor is pin or picture") from None
    if expires_on is not None:
        expires_on = expires_on.strip() or None
        if expires_on:
            try:
                parse_expiry(expires_on)
            except ValueError as e:
                raise PolicyError(str(e)) from None
    else:
        expires_on = current.expires_on
    networks = (parse_networks(scanner_networks) if scanner_networks is not None
                else current.scanner_networks)

    row = db.get(BadgePolicy, school.id) or BadgePolicy(school_id=school.id)
    row.grades = ",".join(g for g in GRADES if g in new_grades)
    row.second_factor_grades = ",".join(g for g in GRADES if g in new_second)
    row.factor = new_factor
    row.allow_browser_scanner = (current.allow_browser_scanner if allow_browser_scanner is None
                                 else allow_browser_scanner)
    row.expires_on = expires_on
    row.scanner_networks = ",".join(networks)
    row.updated_at = clock()
    db.add(row)
    db.flush()
    changed = policy_for(db, school.id)
    audit.record("badge_policy_set", actor=actor, commit=False,
                 data={"school_id": school.id, "policy": changed.describe()})
    db.commit()
    return changed
