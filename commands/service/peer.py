"""Who is at the other end of the socket (SO_PEERCRED), and the actor recorded for them."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Any

from ledger.actor import xlsnap_version

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid (socket(7))


@dataclass(frozen=True)
class Peer:
    """The kernel's word on the client process: pid, uid, gid, and the user's groups."""

    pid: int
    uid: int
    gid: int
    user: str
    groups: tuple[str, ...]
    gids: tuple[int, ...]

    @property
    def is_root(self) -> bool:
        return self.uid == 0


def peer_of(sock: socket.socket) -> Peer:
    """The peer's credentials, resolved to its user name and groups."""
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                  _UCRED.size))
    try:
        entry = pwd.getpwuid(uid)
        user = entry.pw_name
        gids = tuple(sorted(set(os.getgrouplist(user, gid))))
    except KeyError:
        user, gids = str(uid), (gid,)
    groups = []
    for g in gids:
        try:
            groups.append(grp.getgrgid(g).gr_name)
        except KeyError:
            groups.append(str(g))
    return Peer(pid, uid, gid, user, tuple(groups), gids)


def peer_actor(peer: Peer, env: dict[str, str], claimed_uid: object) -> dict[str, Any]:
    """The recorded actor: the peer's credentials; what the client says of itself is a claim."""
    return {
        "uid": peer.uid,
        "user": peer.user,
        "gid": peer.gid,
        "groups": list(peer.groups),
        "sudo_user": None,
        "host": socket.gethostname(),
        "pid": peer.pid,
        "version": xlsnap_version(),
        "via": "xlsnapd",
        "claim": {"user": env.get("USER"), "sudo_user": env.get("SUDO_USER"),
                  "uid": claimed_uid},
    }
