#!/usr/bin/env bash
# Debian packages the platform and its test suite use. Idempotent; runs as root (CI)
# or through sudo where available.
set -euo pipefail
# Fonts: DejaVu (Latin, Greek, Cyrillic) and TrueType CJK fallbacks for the PDF reports
# (ReportLab embeds TrueType outlines only; Noto CJK is CFF-based OpenType).
# libreoffice-impress renders the tumour-board slides (PPTX) to PDF in the tests.
PKGS=(postgresql dcmtk dicom3tools orthanc orthanc-dicomweb chromium poppler-utils
      fonts-dejavu-core fonts-droid-fallback fonts-wqy-zenhei libreoffice-impress)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"; exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages enable services; the tests start their own servers on loopback.
for svc in postgresql orthanc; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
