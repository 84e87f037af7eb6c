"""Signed recording links: the pure signing, and the link server over a real media store and audit log."""

import io

import numpy as np
import pytest
import soundfile

from controller import audit
from controller.index import Index
from controller.links import (LinkApp, LinkError, LinkServer, audit_fetch_to, recording_link, sign_link,
                              verify_link)
from media import MediaStore
from tests.controller.helpdesk_receiver import http_get as get

SECRET = "s3cret-for-tests-0123456789"
RATE_HZ = 8000


# --- signing (pure) --------------------------------------------------------------------------


def test_a_signed_link_verifies_until_it_expires():
    signature = sign_link("rec-1", 2000, SECRET)
    verify_link("rec-1", 2000, signature, SECRET, now_s=1999.9)
    verify_link("rec-1", "2000", signature, SECRET, now_s=0)  # as it arrives in a query string
    with pytest.raises(LinkError, match="expired"):
        verify_link("rec-1", 2000, signature, SECRET, now_s=2000)


@pytest.mark.parametrize("recording_id, expires, secret", [
    ("rec-2", 2000, SECRET),                     # another recording
    ("rec-1", 3000, SECRET),                     # a later expiry
    ("rec-1", 2000, "another-secret-0123456"),   # another key
])
def test_any_change_breaks_the_signature(recording_id, expires, secret):
    with pytest.raises(LinkError, match="bad signature"):
        verify_link(recording_id, expires, sign_link("rec-1", 2000, SECRET), secret, now_s=0)


def test_a_webhook_signature_is_no_link_signature():
    import hashlib
    import hmac
    plain = hmac.new(SECRET.encode(), b"rec-1\n2000", hashlib.sha256).hexdigest()
    with pytest.raises(LinkError):
        verify_link("rec-1", 2000, plain, SECRET, now_s=0)
    with pytest.raises(LinkError, match="not a number"):
        verify_link("rec-1", "soon", plain, SECRET, now_s=0)


def test_recording_link_builds_the_url():
    url, expires = recording_link("https://rec.example.test/", "rec-1", SECRET, now_s=1000.7, ttl_s=60)
    assert expires == 1060
    assert url == f"https://rec.example.test/recordings/rec-1.wav?expires=1060&sig={sign_link('rec-1', 1060, SECRET)}"


# --- the server ------------------------------------------------------------------------------


class Clock:
    now_s = 1_700_000_000.0

    def __call__(self):
        return self.now_s


@pytest.fixture
def setup(tmp_path):
    recordings_dir = tmp_path / "recordings"
    store = MediaStore(recordings_dir)  # the controller's own store, with its cache
    recording = store.create("rec-1", rate_hz=RATE_HZ, channels=2)
    left = np.arange(3 * RATE_HZ, dtype=np.int16) % 1000
    recording.append(np.stack([left, -left], axis=1))
    recording.finish()
    clock = Clock()
    with Index(tmp_path / "consentline.db") as index:
        server = LinkServer(LinkApp(recordings_dir, SECRET, audit_fetch_to(index), clock=clock)).start()
        try:
            yield store, index, server.address[1], clock
        finally:
            server.stop()


def link(clock, recording_id="rec-1", ttl_s=600, fmt="wav"):
    url, _ = recording_link("http://x", recording_id, SECRET, now_s=clock.now_s, ttl_s=ttl_s, fmt=fmt)
    return url.removeprefix("http://x")


def frames(body):
    data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    assert rate == RATE_HZ
    return data


def test_a_valid_link_serves_the_audio_and_is_audited(setup):
    store, index, port, clock = setup
    status, headers, body = get(port, link(clock))
    assert status == 200 and headers["Content-Type"] == "audio/wav" and int(headers["Content-Length"]) == len(body)
    data = frames(body)
    assert data.shape == (3 * RATE_HZ, 2) and data[1234, 0] == 234 and data[1234, 1] == -234
    status, headers, body = get(port, link(clock, fmt="flac"))
    assert status == 200 and headers["Content-Type"] == "audio/flac" and frames(body).shape == (3 * RATE_HZ, 2)
    (first, second) = audit.entries(index, recording_id="rec-1")
    assert (first["action"], first["outcome"], first["details"]["status"]) == ("link_fetch", "done", 200)
    assert first["actor_kind"] == "system" and second["outcome"] == "done"
    assert audit.verify(index).ok


def test_bad_or_expired_signatures_get_403_and_are_audited(setup):
    store, index, port, clock = setup
    good = link(clock, ttl_s=60)
    forged = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    assert get(port, forged)[0] == 403
    assert get(port, good.replace("rec-1", "rec-2"))[0] == 403
    assert get(port, "/recordings/rec-1.wav")[0] == 403
    clock.now_s += 60
    status, _, body = get(port, good)
    assert status == 403 and b"expired" in body
    rows = audit.entries(index)
    assert [(r["recording_id"], r["outcome"], r["details"]["status"]) for r in rows] == [
        ("rec-1", "refused", 403), ("rec-2", "refused", 403), ("rec-1", "refused", 403), ("rec-1", "refused", 403)]
    assert rows[-1]["reason"] == "the link has expired"


def test_a_cut_after_the_link_was_sent_is_not_served_and_a_delete_gives_404(setup):
    store, index, port, clock = setup
    sent = link(clock)  # e.g. in recording.completed, before the cut and the delete
    store.open("rec-1").cut(0, RATE_HZ, actor="user:anna", reason="card number")
    status, _, body = get(port, sent)
    assert status == 200
    data = frames(body)
    assert data.shape == (2 * RATE_HZ, 2) and data[0, 0] == RATE_HZ % 1000  # the first second is gone
    store.delete("rec-1", actor="user:anna", reason="caller asked")
    status, _, body = get(port, sent)
    assert status == 404 and b"deleted" in body
    assert [r["details"]["status"] for r in audit.entries(index)] == [200, 404]


def test_other_paths_and_methods(setup):
    store, index, port, clock = setup
    assert get(port, "/")[0] == 404
    assert get(port, "/recordings/../etc/passwd")[0] == 404
    assert get(port, link(clock), method="POST")[0] == 405
    status, headers, body = get(port, link(clock), method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 44
    assert get(port, link(clock, recording_id="rec-none"))[0] == 404


def test_nothing_is_served_when_the_audit_cannot_be_written(tmp_path):
    store = MediaStore(tmp_path)
    store.create("rec-1", rate_hz=RATE_HZ, channels=1).finish()

    def broken_audit(fetch):
        raise OSError("disk full")

    server = LinkServer(LinkApp(tmp_path, SECRET, broken_audit, clock=Clock())).start()
    try:
        assert get(server.address[1], link(Clock()))[0] == 503
    finally:
        server.stop()
