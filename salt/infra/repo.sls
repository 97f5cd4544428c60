{%- set repo = salt['pigsty.repo']() %}
# Local package repository (Pigsty's offline install): the packages database nodes need,
# with their whole dependency closure as for a bare node, served by Nginx at
# {{ repo.url }}/ . It is rebuilt only when the package list changes: the build script
# writes its stamp (a copy of the list) last, after a complete build.
repo-tools:
  pkg.installed:
    - pkgs:
      - dpkg-dev      # dpkg-scanpackages

repo-package-list:
  file.managed:
    - name: {{ repo.list }}
    - makedirs: True
    - contents: |
        {%- for pkg in repo.packages %}
        {{ pkg }}
        {%- endfor %}

repo-build-script:
  file.managed:
    - name: /usr/local/sbin/pigsty-repo-build
    - source: salt://infra/files/repo_build.sh
    - mode: '0755'

repo-build:
  cmd.run:
    - name: /usr/local/sbin/pigsty-repo-build {{ repo.list }} {{ repo.dir }} {{ repo.cache }}
    - unless: cmp -s {{ repo.list }} {{ repo.dir }}/.pigsty-packages
    - timeout: 1800
    - require:
      - pkg: repo-tools
      - file: repo-package-list
      - file: repo-build-script
