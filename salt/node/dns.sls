{%- set node = salt['pigsty.node']() %}
# Resolver: the meta nodes' dnsmasq ({{ node.nameservers | join(', ') }}), failing fast.
{%- if node.dns_method == 'overwrite' %}
node-resolv-conf:
  file.managed:
    - name: /etc/resolv.conf
    - follow_symlinks: False
    - contents: |
        # Managed by Salt (Pigsty on Salt): Pigsty's DNS on the meta node(s)
{%-   for ip in node.nameservers %}
        nameserver {{ ip }}
{%-   endfor %}
        options timeout:1 attempts:1
{%- else %}
node-resolv-conf:
  test.show_notification:
    - text: /etc/resolv.conf left as it is (pigsty:vars:node_dns_method is none)
{%- endif %}
