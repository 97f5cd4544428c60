# Pigsty on SaltStack: the two commands the README starts with, and the sandbox's own.
PYTHON  ?= /usr/bin/python3
SANDBOX := $(PYTHON) sandbox/sandbox.py

.PHONY: sandbox test unit down status
sandbox:        ## set everything up and run the main job on the default 4-node sandbox
	$(SANDBOX) up

test:           ## unit tests, then integration tests against the real sandbox
	bash tests/run.sh

unit:           ## unit tests only (no sandbox)
	bash tests/run.sh tests/unit

down:           ## remove every sandbox machine, mount, cgroup, veth and the bridge
	$(SANDBOX) down

status:
	$(SANDBOX) status
