import os

import pytest

from bench.processes import free_ports, parse_vmhwm_kib, peak_rss_mib, strip_scheme

STATUS = """Name:\tetcd
VmPeak:\t 11868396 kB
VmSize:\t 11802860 kB
VmHWM:\t   55296 kB
VmRSS:\t   40960 kB
"""


def test_vmhwm_is_read_in_kib():
    assert parse_vmhwm_kib(STATUS) == 55296


def test_missing_or_malformed_vmhwm_is_an_error():
    with pytest.raises(ValueError, match="no VmHWM"):
        parse_vmhwm_kib("Name:\tx\nVmRSS:\t1 kB\n")
    with pytest.raises(ValueError, match="malformed"):
        parse_vmhwm_kib("VmHWM:\tlots kB\n")


def test_peak_of_this_process_is_plausible():
    mib = peak_rss_mib(os.getpid())
    assert 1.0 < mib < 64 * 1024


def test_free_ports_are_distinct():
    ports = free_ports(6)
    assert len(set(ports)) == 6
    assert all(0 < p < 65536 for p in ports)


def test_scheme_is_stripped_from_client_urls():
    assert strip_scheme("http://127.0.0.1:2379") == "127.0.0.1:2379"
    assert strip_scheme("https://10.0.0.1:2379/") == "10.0.0.1:2379"
    assert strip_scheme("127.0.0.1:7001") == "127.0.0.1:7001"
