"""The toolstack port: how xlsnap finds a domain and learns whether, and how, it runs.

One protocol (``base.Toolstack``), three adapters: ``offline`` (a stopped domain's
xl.cfg file), ``qemu`` (a running QEMU reached by its QMP socket) and ``xen`` (``xl``
plus libxl's QMP socket of the domain's device model). ``select.resolve`` picks one
per domain, by ``--toolstack`` or, with ``auto``, the first that reaches it.
"""
