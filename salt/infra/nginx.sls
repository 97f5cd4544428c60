{%- set ngx = salt['pigsty.nginx']() %}
# Nginx: the portal ({{ ngx.home_domain }}, rendered from pillar) and name-based virtual hosts
# (Prometheus, Alertmanager, Grafana, the HAProxy admin page of every database node) over
# HTTPS on {{ ngx.ssl_port }}, with the meta node's certificate from the Pigsty CA (node.pki;
# its SANs name the portal's domains). Plain HTTP on {{ ngx.port }} serves the local package
# repository at /{{ ngx.repo.dir.split('/')[-1] }}/ (apt) and redirects everything else to
# HTTPS. The whole nginx.conf is managed, so `nginx -t -c` checks the candidate before it is
# installed.
include:
  - node.pki

nginx-package:
  pkg.installed:
    - name: nginx

nginx-home:
  file.directory:
    - names:
      - {{ ngx.home }}
      - {{ ngx.home }}/haproxy
    - mode: '0755'

# The live portal's data (served read-only at /live/): the runner's live role records
# (<cluster>.json, written by the failover runner on every meta node) and recent HA events
# (events/<cluster>.json; the runner writes them only where this directory exists)
nginx-live-data:
  file.directory:
    - names:
      - {{ ngx.live_dir }}
      - {{ ngx.live_dir }}/events
    - mode: '0755'
    - makedirs: True

nginx-portal-script:
  file.managed:
    - name: {{ ngx.home }}/portal.js
    - source: salt://infra/files/portal.js
    - mode: '0644'
    - require:
      - file: nginx-home

nginx-portal:
  file.managed:
    - name: {{ ngx.home }}/index.html
    - source: salt://infra/files/portal.html.jinja
    - template: jinja
    - require:
      - file: nginx-home

nginx-haproxy-index:
  file.managed:
    - name: {{ ngx.home }}/haproxy/index.html
    - source: salt://infra/files/haproxy-index.html.jinja
    - template: jinja
    - require:
      - file: nginx-home

# The portal's login: user:SHA-512-crypt, kept while the pillar password verifies
nginx-htpasswd:
  file.managed:
    - name: /etc/nginx/pigsty.htpasswd
    - contents: {{ salt['pigsty_web.portal_htpasswd']() | yaml_dquote }}
    - user: root
    - group: www-data
    - mode: '0640'
    - show_changes: False
    - require:
      - pkg: nginx-package

nginx-config:
  file.managed:
    - name: /etc/nginx/nginx.conf
    - source: salt://infra/files/nginx.conf.jinja
    - template: jinja
    - check_cmd: /usr/sbin/nginx -q -t -c
    - require:
      - pkg: nginx-package
      - x509: pki-node-cert           # nginx -t loads the certificate and key

# Debian's default site is not included by our nginx.conf; remove it so nothing suggests it is
nginx-default-site-off:
  file.absent:
    - name: /etc/nginx/sites-enabled/default
    - require:
      - pkg: nginx-package

nginx-service:
  service.running:
    - name: nginx
    - enable: True
    - reload: True
    - watch:
      - file: nginx-config
      - file: nginx-htpasswd
      - x509: pki-node-cert           # a renewed certificate is served after a reload
