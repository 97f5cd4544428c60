"""pgsql.remove stops every service that a pgsql state starts, and nothing else."""
from salt_tree import services_started_by, services_stopped_by_pgsql_remove


def test_removal_stops_every_service_the_role_starts():
    started = services_started_by("pgsql")
    assert {"pigsty-pgbouncer-exporter", "patroni", "haproxy"} <= started   # the scan finds them
    assert set(services_stopped_by_pgsql_remove()) == started


def test_patroni_stops_last_so_the_data_directory_is_never_in_use():
    assert services_stopped_by_pgsql_remove()[-1] == "patroni"
