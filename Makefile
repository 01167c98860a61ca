# `make run`: the portal with a demo district on http://127.0.0.1:5000 (`make run PORT=5050`: another port)
# `make test`: the whole suite. Both do every set-up step they need, and are safe to repeat.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# The suite runs on every core, at most 4 (pytest-xdist): each worker starts its own redis-server
# and database, and its own Chromium when it runs a browser test. `PYTEST_WORKERS=0`: one process.
PYTEST_WORKERS ?= auto
PORT ?= 5000

.PHONY: run test system-deps vendor-js clean

run: system-deps $(STAMP)
	$(BIN)/portal dev --port $(PORT)

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests ran"; exit 1; fi; exit $$status

# Debian packages the portal, the kiosk and the tests use. Installed when missing and apt
# is usable; otherwise we say exactly what to install by hand.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ldconfig -p 2>/dev/null | grep -q 'libzbar.so.0' || missing="$$missing libzbar0"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v Xvfb >/dev/null || missing="$$missing xvfb"; \
	command -v xdotool >/dev/null || missing="$$missing xdotool"; \
	command -v xclip >/dev/null || missing="$$missing xclip"; \
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf || missing="$$missing fonts-dejavu-core"; \
	test -f /usr/share/fonts/truetype/noto/NotoSansThai-Bold.ttf || missing="$$missing fonts-noto-core"; \
	test -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc || missing="$$missing fonts-wqy-zenhei"; \
	pkg-config --exists xmlsec1 2>/dev/null || missing="$$missing libxmlsec1-dev pkg-config"; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else SUDO=none; fi; \
	if [ "$$SUDO" = none ] || ! command -v apt-get >/dev/null; then \
		echo "Please install these Debian packages, then run make again:"; \
		echo "    sudo apt-get install$$missing"; exit 1; \
	fi; \
	echo "installing Debian packages:$$missing"; \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[demo,kiosk,test,postgres]"
	touch $(STAMP)

# The in-browser badge scanner's QR decoder, from the npm package pinned in package-lock.json.
# The built file is committed under static/js/vendor/, so `make run` needs no npm: run this only
# to update it (change the version in package.json and run `npm install` first).
vendor-js:
	npm ci --no-audit --no-fund --ignore-scripts
	cp node_modules/jsqr/dist/jsQR.js static/js/vendor/jsQR.js
	cp node_modules/jsqr/LICENSE static/js/vendor/jsQR.LICENSE

clean:
	rm -rf $(VENV) .pytest_cache
