"""The identity book: a join token registers one worker, once, before it expires; a credential
speaks for its worker alone; only digests are kept."""

from __future__ import annotations

import pytest

from router.errors import Forbidden, Unauthorized
from router.identity.book import IdentityBook
from router.identity.speaker import AnonymousWorkers, check_release, check_report, identify
from router.identity.tokens import digest

CLOSED = AnonymousWorkers(allowed=False, shared_token="")


def registered(book: IdentityBook, worker_id: str = "w1", endpoint: str = "e") -> str:
    token = book.join_token(book.mint(endpoint, now=0.0, ttl_s=60.0), 1.0)
    _, credential = book.register(
        token, worker_id=worker_id, url=f"http://{worker_id}.test", max_workers=8
    )
    return credential


def test_a_join_token_is_good_once_and_until_it_expires() -> None:
    book = IdentityBook()
    token = book.mint("e", now=0.0, ttl_s=60.0)
    assert book.join_token(token, 59.9).endpoint == "e"
    with pytest.raises(Unauthorized, match="expired"):
        book.join_token(token, 60.0)
    kept = book.join_token(token, 1.0)
    book.register(kept, worker_id="w1", url="http://w1.test", max_workers=8)
    with pytest.raises(Unauthorized, match="used"):
        book.join_token(token, 1.0)


def test_only_digests_are_kept() -> None:
    book = IdentityBook()
    token = book.mint("e", now=0.0, ttl_s=60.0)
    credential = registered(book, "w2")
    stored = book.stored().model_dump_json()
    assert token not in stored
    assert credential not in stored
    assert digest(token) in stored
    assert digest(credential) in stored
    assert IdentityBook(book.stored()).holder(credential).worker_id == "w2"


def test_a_credential_speaks_for_its_worker_alone() -> None:
    book = IdentityBook()
    credential = registered(book, "w1")
    registered(book, "w2")
    speaker = identify(book, credential, CLOSED, now=2.0)
    check_report(speaker, book, worker_id="w1", endpoint="e", url="http://w1.test")
    check_release(speaker, book, "w1")
    for worker_id, endpoint, url in [
        ("w2", "e", "http://w2.test"),
        ("w1", "other", "http://w1.test"),
        ("w1", "e", "http://elsewhere.test"),
    ]:
        with pytest.raises(Forbidden):
            check_report(speaker, book, worker_id=worker_id, endpoint=endpoint, url=url)
    with pytest.raises(Forbidden):
        check_release(speaker, book, "w2")


def test_anonymous_speakers_need_the_flag_and_the_shared_token() -> None:
    book = IdentityBook()
    registered(book, "w1")
    with pytest.raises(Unauthorized, match="TGIS_ALLOW_ANONYMOUS_WORKERS"):
        identify(book, "", CLOSED, now=0.0)
    shared = AnonymousWorkers(allowed=True, shared_token="s3cret")
    with pytest.raises(Unauthorized):
        identify(book, "guess", shared, now=0.0)
    anonymous = identify(book, "s3cret", shared, now=0.0)
    check_report(anonymous, book, worker_id="v1", endpoint="e", url="http://v1.test")
    with pytest.raises(Forbidden, match="own credential"):
        check_report(anonymous, book, worker_id="w1", endpoint="e", url="http://w1.test")
    with pytest.raises(Forbidden, match="own credential"):
        check_release(anonymous, book, "w1")


def test_registration_is_bounded_per_endpoint_and_a_bound_token_replaces() -> None:
    book = IdentityBook()
    first = registered(book, "w1")
    registered(book, "w2")
    token = book.join_token(book.mint("e", now=0.0, ttl_s=60.0), 1.0)
    with pytest.raises(Forbidden, match="TGIS_MAX_WORKERS_PER_ENDPOINT"):
        book.register(token, worker_id="w3", url="http://w3.test", max_workers=2)
    again = book.join_token(book.mint("e", now=0.0, ttl_s=60.0, worker_id="w1"), 1.0)
    _, second = book.register(again, worker_id="w1", url="http://new.test", max_workers=2)
    assert book.holder(second).url == "http://new.test"
    with pytest.raises(Unauthorized):
        book.holder(first)  # the restarted worker's old credential speaks for nobody


def test_forgetting_an_endpoint_drops_its_workers_and_tokens() -> None:
    book = IdentityBook()
    credential = registered(book, "w1")
    token = book.mint("e", now=0.0, ttl_s=60.0)
    assert book.forget_endpoint("e")
    with pytest.raises(Unauthorized):
        book.holder(credential)
    with pytest.raises(Unauthorized):
        book.join_token(token, 1.0)
