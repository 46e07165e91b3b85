"""xlsnapd's refusals that no domain's ledger can hold (a command naming no domain, or an
unknown one): one access log per refused uid, in the same event log."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.domain import Actor

ACCESS_NAMESPACE = uuid5(NAMESPACE_URL, "https://xlsnap.invalid/access-log")
#: The ``domain_name`` of a refusal of a command on every domain.
EVERY_DOMAIN = "*"


def access_log_id(uid: int) -> UUID:
    """The access log of ``uid`` (apart from every domain's ids: another namespace)."""
    return uuid5(ACCESS_NAMESPACE, str(uid))


class AccessLog(Aggregate):
    """The refusals of one uid's commands that name no known domain: who, what, when."""

    @staticmethod
    def create_id(uid: int, actor: Actor) -> UUID:
        return access_log_id(uid)

    @event("Opened")
    def __init__(self, uid: int, actor: Actor) -> None:
        self.uid = uid

    @event("AccessRefused")
    def record_refused(self, command: str, right: str | None, reason: str, domain_name: str,
                       actor: Actor) -> None:
        """xlsnapd refused ``command`` on ``domain_name`` (``*``: every domain); ``right`` is
        the one missing (None: the command or option is root's alone)."""
