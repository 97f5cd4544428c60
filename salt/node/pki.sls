{#- Node certificates from the Pigsty CA (Salt's x509_v2 modules).
    The CA server (the first meta node) creates the CA key and self-signed certificate under
    /etc/pki/pigsty/ca/ (key 0600 root): the key never leaves it. Every node, the CA server
    included, gets
      /etc/pki/pigsty/ca.crt    0644             the CA certificate
      /etc/pki/pigsty/node.crt  0644             CN = minion id, SAN = DNS:<id>, IP:<node ip>, IP:127.0.0.1
      /etc/pki/pigsty/node.key  0640 root:ssl-cert
    Other nodes ask the CA server to sign over the master (master.d/pki.conf allows peers to
    call x509.sign_remote_certificate) under their own policy pigsty-node-<id>
    (_pillar/pigsty_pki.py); the CA server signs its own locally. The certificate is
    renewed when fewer than days_remaining days are left. Names and policies:
    _utils/pigsty_pki.py. -#}
{%- set pki = salt['pigsty_pki.request']() %}
{%- set p = pki.paths %}
pki-group:
  group.present:
    - name: {{ pki.group }}
    - system: True

pki-dir:
  file.directory:
    - name: {{ p.dir }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True          # a minimal Debian has no /etc/pki
{%- if pki.is_ca %}

pki-ca-dir:
  file.directory:
    - name: {{ p.ca_dir }}
    - user: root
    - group: root
    - mode: '0700'
    - require:
      - file: pki-dir

pki-ca-key:
  x509.private_key_managed:
    - name: {{ p.ca_key }}
    - algo: rsa
    - keysize: 4096
    - user: root
    - group: root
    - mode: '0600'
    - require:
      - file: pki-ca-dir

pki-ca-master-cert:
  x509.certificate_managed:
    - name: {{ p.ca_crt_master }}
    - signing_private_key: {{ p.ca_key }}
    - CN: {{ pki.ca_cn|json }}
    - basicConstraints: 'critical, CA:true, pathlen:0'
    - keyUsage: 'critical, cRLSign, keyCertSign'
    - subjectKeyIdentifier: hash
    - authorityKeyIdentifier: 'keyid:always'
    - days_valid: {{ pki.ca_days_valid }}
    - days_remaining: {{ pki.ca_days_remaining }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - x509: pki-ca-key

{#- the CA server's copy for its own services: read from the CA certificate when it runs #}
pki-ca-cert:
  x509.pem_managed:
    - name: {{ p.ca_crt }}
    - text: {{ p.ca_crt_master }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - x509: pki-ca-master-cert
{%- else %}

{#- the CA certificate as the CA server hands it out with this node's policy (the peer
    call the signing uses; a CA server that does not answer fails the render, clearly) #}
{%-   set policy = salt['x509.get_signing_policy'](pki.signing_policy, ca_server=pki.ca_server) %}
pki-ca-cert:
  x509.pem_managed:
    - name: {{ p.ca_crt }}
    - text: {{ policy.signing_cert|json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: pki-dir
{%- endif %}

pki-node-key:
  x509.private_key_managed:
    - name: {{ p.node_key }}
    - algo: rsa
    - keysize: 2048
    - user: root
    - group: {{ pki.group }}
    - mode: '0640'
    - require:
      - group: pki-group
      - file: pki-dir

pki-node-cert:
  x509.certificate_managed:
    - name: {{ p.node_crt }}
    - private_key: {{ p.node_key }}
{%- if pki.ca_server %}
    - ca_server: {{ pki.ca_server }}
{%- endif %}
    - signing_policy: {{ pki.signing_policy }}
    - CN: {{ pki.CN|json }}
    - subjectAltName: {{ pki.subjectAltName|json }}
    - days_remaining: {{ pki.days_remaining }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - x509: pki-node-key
      - x509: pki-ca-cert
