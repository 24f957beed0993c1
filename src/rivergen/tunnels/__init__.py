"""SSH tunnels through a bastion, opened for one connection test and always torn down."""

from rivergen.tunnels.host_keys import (
    HostKeyPin,
    fingerprint_of_key,
    fingerprint_of_known_hosts_line,
    parse_host_key_pin,
)
from rivergen.tunnels.keys import check_private_key, load_private_key
from rivergen.tunnels.schemas import SSH_SECRET_FIELDS, SshTunnelConfig
from rivergen.tunnels.tunnel import TunnelInfo, open_tunnel

__all__ = [
    "SSH_SECRET_FIELDS",
    "HostKeyPin",
    "SshTunnelConfig",
    "TunnelInfo",
    "check_private_key",
    "fingerprint_of_key",
    "fingerprint_of_known_hosts_line",
    "load_private_key",
    "open_tunnel",
    "parse_host_key_pin",
]
