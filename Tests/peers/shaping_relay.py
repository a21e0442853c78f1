"""A userspace UDP relay that shapes one direction like a constrained link:
a token bucket (the link rate), a bounded queue in front of it (the
bottleneck buffer; what does not fit is dropped) and an optional fixed
delay. The kernel here has no netem, so tests put this between a peer and
the SFU: the peer is given the relay's address instead of the SFU's.

Datagrams from the peer (the first address that sends to `listen`) go to
`target` through the shaper and datagrams from `target` go straight back;
with `shape="to_peer"` it is the other way round (a subscriber's downlink).
The rate can change while it runs (`set_rate`), and `take_queue_delay`
reports the longest time a datagram waited since the last call."""
import collections
import select
import socket
import threading
import time


class ShapingRelay:
    def __init__(self, target, rate_bps, queue_bytes=40_000, delay_s=0.0, shape="from_peer"):
        self.target = target
        self.shape_to_peer = shape == "to_peer"
        self.window_queue_delay = 0.0
        self.rate = rate_bps / 8.0
        self.queue_limit = queue_bytes
        self.delay = delay_s
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.peer = None
        self.queue = collections.deque()
        self.queued = 0
        self.dropped = 0
        self.forwarded = 0
        self.max_queue_delay = 0.0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(timeout=5)
        self.front.close()
        self.back.close()

    def set_rate(self, rate_bps):
        self.rate = rate_bps / 8.0

    def take_queue_delay(self):
        """The longest wait (s) of a datagram sent since the last call, and
        of the one at the head of the queue now."""
        try:
            head = time.monotonic() - self.queue[0][0]
        except IndexError:
            head = 0.0
        value, self.window_queue_delay = max(self.window_queue_delay, head), 0.0
        return value

    def run(self):
        tokens = 0.0
        last = time.monotonic()
        bucket = 3000.0  # burst: two full packets
        while not self.stopping:
            now = time.monotonic()
            tokens = min(bucket, tokens + (now - last) * self.rate)
            last = now
            # Send what the link allows, oldest first (after the fixed delay).
            while self.queue and self.queue[0][0] + self.delay <= now and tokens >= len(self.queue[0][1]):
                arrived, data = self.queue.popleft()
                self.queued -= len(data)
                tokens -= len(data)
                self.max_queue_delay = max(self.max_queue_delay, now - arrived)
                self.window_queue_delay = max(self.window_queue_delay, now - arrived)
                if self.shape_to_peer:
                    self.front.sendto(data, self.peer)
                else:
                    self.back.sendto(data, self.target)
                self.forwarded += 1
            wait = 0.05
            if self.queue:
                need = max(0.0, len(self.queue[0][1]) - tokens) / self.rate
                wait = max(0.0005, min(wait, need, self.queue[0][0] + self.delay - now if self.delay else need))
            readable, _, _ = select.select([self.front, self.back], [], [], wait)
            for s in readable:
                try:
                    data, source = s.recvfrom(65536)
                except OSError:
                    continue
                if s is self.front:
                    self.peer = self.peer or source
                if (s is self.front) != self.shape_to_peer:
                    if self.queued + len(data) > self.queue_limit:
                        self.dropped += 1
                        continue
                    self.queue.append((time.monotonic(), data))
                    self.queued += len(data)
                elif s is self.front:
                    self.back.sendto(data, self.target)
                elif self.peer:
                    self.front.sendto(data, self.peer)
