"""Sinks on real sockets/streams: the publisher never blocks; console lines are one per event."""

import io
import json
import socket
import time

import pytest
import zmq

from streamtag import events
from streamtag.errors import UsageError
from streamtag.settings import check_address
from streamtag.sinks import ConsoleSink, ZmqPublisher

EVENT = events.genre_event(stream="s", seq=0, t_start=0.0, t_end=3.0, genre="jazz", confidence=0.8,
                           raw_genre="jazz", probs={"jazz": 0.8, "rock": 0.2}, latency_ms=5.0, model="m")


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_publisher_never_blocks_on_a_subscriber_that_does_not_read():
    addr = f"tcp://127.0.0.1:{_port()}"
    pub = ZmqPublisher(addr, linger_ms=0)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 10)
    sub.connect(addr)
    sub.setsockopt_string(zmq.SUBSCRIBE, "")
    try:
        time.sleep(0.3)
        pub.publish(events.GENRE, EVENT)
        assert sub.poll(2000)                                   # connected and receiving
        topic, got = events.decode(sub.recv_string())
        assert topic == events.GENRE and got == EVENT
        t0 = time.monotonic()
        for _ in range(20000):                                  # far beyond both high-water marks
            pub.publish(events.GENRE, EVENT)
        assert time.monotonic() - t0 < 5.0
    finally:
        sub.close(0)
        ctx.term()
        pub.close()


def test_second_bind_on_the_same_port_is_a_one_line_usage_error():
    addr = f"tcp://127.0.0.1:{_port()}"
    first = ZmqPublisher(addr)
    try:
        with pytest.raises(UsageError, match="in use"):
            ZmqPublisher(addr)
    finally:
        first.close()
    ZmqPublisher(addr).close()                                  # released on close


def test_console_json_and_human_lines():
    out = io.StringIO()
    sink = ConsoleSink(json_lines=True, out=out)
    sink.publish(events.GENRE, EVENT)
    sink.publish(events.LEVEL, events.level_event(stream="s", t=1.0, rms_dbfs=-20, peak_dbfs=-6, clipping=False,
                                                  silent=False))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == {"topic": events.GENRE, **EVENT}
    out = io.StringIO()
    human = ConsoleSink(out=out)
    human.publish(events.GENRE, EVENT)
    human.publish(events.CHANGE, events.change_event(EVENT, "rock", at=2.0))
    assert out.getvalue().splitlines()[0].endswith("jazz       0.80  (this window: jazz)")
    assert out.getvalue().splitlines()[1] == "# genre: rock -> jazz at 0:02.0"


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:5556", "tcp://*:1", "tcp://localhost:65535", "tcp://lo:7000",
                                     "tcp://[::1]:5556", "ipc:///tmp/streamtag.sock"])
def test_publish_addresses_accepted(address):
    check_address(address, "publish")


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*",
                                     "tcp://127.0.0.1:5556junk", "tcp://127.0.0.1", "tcp://:5556", "udp://h:1",
                                     "ipc://", "tcp://a b:1", "127.0.0.1:5556"])
def test_publish_addresses_refused(address):
    with pytest.raises(UsageError, match="tcp://HOST:PORT"):
        check_address(address, "publish")
