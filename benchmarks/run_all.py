"""``make bench``: run every benchmark and print its figures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corda_bench
import cross_bench
import dvp_bench
import evm_bench
import ibc_bench
import logistics_bench
import posttrade_bench
import relayer_bench


def main() -> None:
    corda_bench.main()
    print()
    evm_bench.main()
    print()
    ibc_bench.main()
    print()
    relayer_bench.main()
    print()
    cross_bench.main()
    print()
    dvp_bench.main()
    print()
    logistics_bench.main()
    print()
    posttrade_bench.main()


if __name__ == "__main__":
    main()
