#!/usr/bin/env python3
"""Network namespace for the chaos harness's `partition` fault (Python 3 standard library only).

One replica runs in a network namespace of its own, joined to the host by a veth pair on a /30
of TEST-NET-2 (198.51.100.0/24, RFC 5737: documentation addresses, never routed anywhere). The
namespace has no other interface than its loopback and its end of the pair, and no default
route; the host has only the connected /30 route to it, so nothing can leave the pair. PostgreSQL
and Redis listen on the host end as well as on 127.0.0.1.

The cut: a `blackhole` qdisc on the egress of both ends of the pair. Every packet, in both
directions, is dropped after the sending stack has handed it to the device, which reports
success: the sender sees no error at all, only silence, as when a switch or a firewall between
two hosts drops everything. The link stays up, so no route disappears; the neighbour (ARP)
entries are permanent, so no failed ARP resolution turns into "No route to host" after a few
seconds either. (`ip link set ... down` is not a partition: the side whose link is down gets
ENETUNREACH at once, the other EHOSTUNREACH after ARP fails, and a socket that gets an error
learns of the cut immediately. An nft/iptables DROP in an OUTPUT chain returns EPERM to the
sender, which is no better. `tc netem loss 100%` would also be silent, but needs sch_netem,
which not every kernel has; the blackhole qdisc is part of every kernel with CONFIG_NET_SCHED.)

Command line (used by run.sh):
  partition.py up TAG    creates namespace djinn-chaos-TAG and its veth pair; prints KEY=VALUE
                         lines to export (DJINN_CHAOS_NETNS, ..._HOST_IF, ..._NS_IF,
                         ..._HOST_ADDR, ..._NS_ADDR, ..._SUBNET), or one line
                         DJINN_CHAOS_PARTITION_SKIP=<reason> when it cannot (not root, no
                         iproute2, namespaces not permitted...). Exit status 0 in both cases.
  partition.py down TAG  deletes them (idempotent; silent when they are gone).
"""

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys

# TEST-NET-2 (RFC 5737): documentation addresses. Each run takes a /30 of it that no address or
# route of the host overlaps (the machine may use TEST-NET ranges itself).
POOL = ipaddress.ip_network("198.51.100.0/24")
NS_PREFIX = "djinn-chaos-"


class NetError(Exception):
    pass


def run(cmd, check=True, timeout=10):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and p.returncode != 0:
        raise NetError(f"{' '.join(cmd)}: {(p.stderr or p.stdout).strip() or 'exit ' + str(p.returncode)}")
    return p


def names(tag):
    tag = str(tag)
    if not re.fullmatch(r"[0-9]{1,9}", tag):
        raise NetError(f"tag must be a number (the harness's pid), not {tag!r}")
    return NS_PREFIX + tag, f"djc{tag}h", f"djc{tag}n"


def used_networks():
    """Every IPv4 network the host namespace has an address in or a route to (not the default
    route, which covers everything)."""
    nets = []
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    for r in routes:
        dst = r.get("dst", "")
        if dst in ("", "default") or r.get("type") in ("broadcast",):
            continue
        try:
            nets.append(ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False))
        except ValueError:
            continue
    return nets


def pick_subnet(tag):
    used = used_networks()
    subnets = list(POOL.subnets(new_prefix=30))
    start = int(tag) % len(subnets)
    for i in range(len(subnets)):
        s = subnets[(start + i) % len(subnets)]
        if not any(s.overlaps(u) for u in used):
            return s
    raise NetError(f"no free /30 left in {POOL} (every one overlaps an address or route here)")


def skip_reason():
    if os.geteuid() != 0:
        return "not running as root (a network namespace, a veth pair and tc need root)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install iproute2)"
    return None


def mac(ns, ifname):
    cmd = ["ip"] + (["-n", ns] if ns else []) + ["-j", "link", "show", "dev", ifname]
    return json.loads(run(cmd).stdout)[0]["address"]


def disable_ipv6(ns, ifname):
    """No IPv6 on the pair: no link-local address, no router solicitation, nothing but the /30."""
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    cmd = ["sh", "-c", f"test ! -e {path} || echo 1 > {path}"]
    run((["ip", "netns", "exec", ns] if ns else []) + cmd, check=False)


def up(tag):
    ns, host_if, ns_if = names(tag)
    reason = skip_reason()
    if reason:
        return {"DJINN_CHAOS_PARTITION_SKIP": reason}
    stale = [n for n in list_namespaces() if n.startswith(NS_PREFIX) and n != ns
             and not pid_alive(n[len(NS_PREFIX):])]
    for n in stale:
        print(f"chaos: note: stale namespace {n} (its harness is gone); remove it with "
              f"`ip netns delete {n}`", file=sys.stderr)
    down(tag)  # a namespace of this name can only be a leftover
    try:
        net = pick_subnet(tag)
        host_addr, ns_addr = str(net.network_address + 1), str(net.network_address + 2)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
        run(["ip", "link", "set", ns_if, "netns", ns])
        disable_ipv6(None, host_if)
        disable_ipv6(ns, ns_if)
        run(["ip", "addr", "add", f"{host_addr}/30", "dev", host_if])
        run(["ip", "-n", ns, "addr", "add", f"{ns_addr}/30", "dev", ns_if])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "set", host_if, "up"])
        run(["ip", "-n", ns, "link", "set", ns_if, "up"])
        # Permanent neighbours: during the cut nothing but silence (see the module docstring).
        run(["ip", "neigh", "replace", ns_addr, "lladdr", mac(ns, ns_if), "dev", host_if,
             "nud", "permanent"])
        run(["ip", "-n", ns, "neigh", "replace", host_addr, "lladdr", mac(None, host_if),
             "dev", ns_if, "nud", "permanent"])
        # The cut must be possible here: try it once.
        cut(ns, host_if, ns_if)
        restore(ns, host_if, ns_if)
    except (NetError, OSError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        down(tag)
        return {"DJINN_CHAOS_PARTITION_SKIP": f"cannot set up the network namespace: {e}"}
    return {"DJINN_CHAOS_NETNS": ns, "DJINN_CHAOS_NET_HOST_IF": host_if,
            "DJINN_CHAOS_NET_NS_IF": ns_if, "DJINN_CHAOS_NET_HOST_ADDR": host_addr,
            "DJINN_CHAOS_NET_NS_ADDR": ns_addr, "DJINN_CHAOS_NET_SUBNET": str(net)}


def down(tag):
    ns, host_if, _ = names(tag)
    if shutil.which("ip") is None:
        return
    # Deleting the namespace destroys its end of the pair, and with it the host end; the host
    # end is deleted explicitly as well in case the namespace is gone but the pair is not.
    run(["ip", "netns", "delete", ns], check=False)
    run(["ip", "link", "delete", host_if], check=False)


def list_namespaces():
    p = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True


def cut(ns, host_if, ns_if):
    """Replica -> server first, then server -> replica; both silent drops."""
    run(["tc", "-n", ns, "qdisc", "add", "dev", ns_if, "root", "handle", "1:", "blackhole"])
    run(["tc", "qdisc", "add", "dev", host_if, "root", "handle", "1:", "blackhole"])


def restore(ns, host_if, ns_if):
    """Removes the blackhole from both ends (idempotent: an end without it is left alone)."""
    for show, delete in ((["tc", "qdisc", "show", "dev", host_if],
                          ["tc", "qdisc", "del", "dev", host_if, "root"]),
                         (["tc", "-n", ns, "qdisc", "show", "dev", ns_if],
                          ["tc", "-n", ns, "qdisc", "del", "dev", ns_if, "root"])):
        if "blackhole" in run(show).stdout:
            run(delete)
    if is_cut(ns, host_if, ns_if):
        raise NetError(f"the blackhole qdisc is still on {host_if} or {ns_if}")


def is_cut(ns, host_if, ns_if):
    """Whether either end still has the blackhole qdisc."""
    for cmd in (["tc", "qdisc", "show", "dev", host_if],
                ["tc", "-n", ns, "qdisc", "show", "dev", ns_if]):
        if "blackhole" in run(cmd, check=False).stdout:
            return True
    return False


def main(argv):
    if len(argv) != 3 or argv[1] not in ("up", "down"):
        print("usage: partition.py up|down TAG", file=sys.stderr)
        return 2
    try:
        if argv[1] == "up":
            for k, v in up(argv[2]).items():
                print(f"{k}={v}")
        else:
            down(argv[2])
    except NetError as e:
        print(f"chaos: partition.py {argv[1]}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
