"""IBC core (ICS-02/03/04/05/23/24), host-agnostic and pure: both ledgers' IBC hosts build on it.

``host`` (ICS-24 identifiers and paths), ``types`` (heights, connection and channel ends, packets
and their canonical encoding), ``commitment`` (what is stored under each path), ``client`` (the
ICS-02 light-client interface).
"""
