"""Every alarm message exists in English and Chinese: each finding the catalog rows raise (and every
finding on the way, of any rule) carries both texts, so a page or push in 中文 mode is never English."""

from __future__ import annotations

import re

import pytest

from server.domain.findings import Transition
from tests.server.domain.test_catalog import ROWS, Row

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_every_raised_finding_has_an_english_and_a_chinese_message(row: Row) -> None:
    f = row.setup()
    row.raise_(f)
    raised = [x for x in f.findings if x.transition is Transition.RAISE]
    assert raised
    missing = [(x.rule, x.subject, x.message, x.message_zh) for x in raised
               if not x.message.strip() or not HAN.search(x.message_zh)]
    assert not missing, missing
    assert all(x.message_zh != x.message for x in raised)
