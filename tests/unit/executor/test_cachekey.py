"""Cache keys: what invalidates and what does not."""

from __future__ import annotations

from builder.executor.cachekey import EntryPrint, context_key, image_key, step_key


def _e(path: str, content: str = "c", mode: int = 0o644, uid: int = 0) -> EntryPrint:
    return EntryPrint(path, "f", mode, uid, 0, "", content)


def test_context_key_depends_on_content_mode_owner_and_path_only() -> None:
    base = context_key("s", [_e("a"), _e("b")])
    assert context_key("s", [_e("b"), _e("a")]) == base  # order-independent
    assert context_key("s", [_e("a", "x"), _e("b")]) != base
    assert context_key("s", [_e("a", mode=0o755), _e("b")]) != base
    assert context_key("s", [_e("a", uid=1000), _e("b")]) != base
    assert context_key("s", [_e("a")]) != base
    assert context_key("t", [_e("a"), _e("b")]) != base
    link = EntryPrint("l", "l", 0o777, 0, 0, "target")
    assert context_key("s", [link]) != context_key("s", [EntryPrint("l", "l", 0o777, 0, 0, "x")])


def test_step_key_chains_inputs_in_order() -> None:
    k = step_key("step", ["a", "b"])
    assert step_key("step", ["a", "b"]) == k
    assert step_key("step", ["b", "a"]) != k
    assert step_key("step", ["a", "c"]) != k
    assert step_key("other", ["a", "b"]) != k
    assert step_key("step", ["a", "b"], source_date_epoch=0) != k
    assert step_key("step", ["ab"]) != step_key("step", ["a", "b"])  # unambiguous


def test_image_key_follows_the_manifest_digest() -> None:
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert image_key("s", d1) == image_key("s", d1)
    assert image_key("s", d1) != image_key("s", d2)
    assert image_key("s", None) != image_key("s", d1)
