{%- from 'infra/map.jinja' import infra with context %}
# dnsmasq on {{ infra.node_ip }}:{{ infra.dns_port }}: Pigsty's names (nodes, instances, clusters ->
# VIP, <cluster>-primary, infra domains) from an addn-hosts file rendered by
# _utils/pigsty_dns.py. A failover runner rewrites that file and sends SIGHUP (reload).
# It forwards nowhere unless pillar names dns_upstream: the machines have no other resolver.
dnsmasq-config:
  file.managed:
    - name: /etc/dnsmasq.d/pigsty.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        port={{ infra.dns_port }}
        listen-address={{ infra.node_ip }},127.0.0.1
        bind-interfaces
        no-hosts
        addn-hosts=/etc/pigsty/dns/hosts
        domain-needed
        bogus-priv
        local-ttl=5
        no-resolv
{%- for server in infra.dns_upstream %}
        server={{ server }}
{%- endfor %}
    - check_cmd: /bin/sh -c 'test ! -x /usr/sbin/dnsmasq || /usr/sbin/dnsmasq --test --conf-file="$0"'

dnsmasq-hosts:
  file.managed:
    - name: /etc/pigsty/dns/hosts
    - makedirs: True
    - contents: {{ salt['pigsty.dns_hosts_file']() | json }}

# the config is in place before the package starts dnsmasq for the first time
dnsmasq-package:
  pkg.installed:
    - name: dnsmasq
    - require:
      - file: dnsmasq-config
      - file: dnsmasq-hosts

dnsmasq-service:
  service.running:
    - name: dnsmasq
    - enable: True
    - watch:
      - file: dnsmasq-config
    - require:
      - pkg: dnsmasq-package

# new records: SIGHUP makes dnsmasq re-read addn-hosts (no restart)
dnsmasq-reload:
  module.run:
    - name: service.reload
    - m_name: dnsmasq
    - onchanges:
      - file: dnsmasq-hosts
    - require:
      - service: dnsmasq-service
