"""Hosts for the cluster tests: one network namespace per node, each
linked by a veth pair to a bridge in the test's own namespace, where the
test's peers and Redis sit (10.77.N.254). Everything is made by the test
and removed after it; nothing leaves these namespaces and loopback."""
import os
import subprocess


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


class Hosts:
    made = 0

    def __init__(self, count, subnet=None):
        # Unique per process and per instance (a veth of a deleted
        # namespace may linger a moment); interface names have 15 bytes.
        Hosts.made += 1
        tag = f"{os.getpid() % 100000}{chr(ord('a') + Hosts.made % 26)}"
        self.subnet = subnet or 77
        self.bridge = f"rsbr{tag}"
        self.names = [f"rsfu{tag}n{i}" for i in range(count)]
        self.gateway = f"10.{self.subnet}.0.254"

    def ip(self, i):
        return f"10.{self.subnet}.0.{i + 1}"

    def __enter__(self):
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            raise RuntimeError(f"cannot make network namespaces here (root and iproute2 needed): {e}")
        try:
            self.make()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def make(self):
        sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i, ns in enumerate(self.names):
            sh("ip", "netns", "add", ns)
            outer, inner = self.veth(i)
            sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", outer, "master", self.bridge)
            sh("ip", "link", "set", outer, "up")
            sh("ip", "link", "set", inner, "netns", ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(i)}/24", "dev", inner)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")

    def veth(self, i):
        tag = self.bridge[4:]
        return f"rv{tag}o{i}", f"rv{tag}i{i}"

    def __exit__(self, *exc):
        for i, ns in enumerate(self.names):
            sh("ip", "link", "del", self.veth(i)[0], check=False)
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)

    def cut(self, i):
        """Host i's link goes down (a partition: nothing is closed, nothing arrives)."""
        sh("ip", "link", "set", self.veth(i)[0], "down")

    def popen(self, i, args, **kw):
        """A process inside host i's namespace."""
        return subprocess.Popen(["ip", "netns", "exec", self.names[i]] + list(args), **kw)
