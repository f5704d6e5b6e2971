"""Whether an idle maker is one of the warm floor, table-driven (system/medicine/warm.py)."""

from __future__ import annotations

import pytest

from medpubsub.medicine.warm import one_of_the_floor


@pytest.mark.parametrize(
    ("owned", "partitions", "floor", "stays"),
    [
        # tabs.orders: 40 partitions, a floor of 2. Two members own 20 each; three own 13-14.
        pytest.param(20, 40, 2, True, id="one-of-two"),
        pytest.param(40, 40, 2, True, id="alone"),
        pytest.param(14, 40, 2, False, id="one-of-three"),
        pytest.param(19, 40, 2, False, id="just-below-half"),
        # Partitions still moving: a maker holding more than its share stays, and asks again.
        pytest.param(27, 40, 2, True, id="more-than-its-share"),
        # An odd count: two members own 20 and 21 of 41; three own 13-14.
        pytest.param(20, 41, 2, True, id="smaller-half-of-41"),
        pytest.param(14, 41, 2, False, id="one-of-three-of-41"),
        pytest.param(10, 40, 4, True, id="floor-of-four"),
        pytest.param(8, 40, 4, False, id="one-of-five"),
        pytest.param(40, 40, 0, False, id="no-floor"),
        pytest.param(0, 0, 2, False, id="partitions-unknown"),
        pytest.param(0, 40, 2, False, id="owns-nothing"),
    ],
)
def test_one_of_the_floor(owned: int, partitions: int, floor: int, stays: bool) -> None:
    assert one_of_the_floor(owned, partitions, floor) is stays
