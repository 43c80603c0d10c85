"""Dependency audit for CI: pip-audit over the installed set; fails on a known vulnerability with a fix.

pip-audit itself exits non-zero on any finding, including ones no release fixes yet (nothing to upgrade to);
this wrapper fails only where an upgrade exists, and says plainly how many packages the vulnerability
service could not answer for, so an unreachable service is visible rather than read as "clean".
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    run = subprocess.run([sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
                          "--format", "json"], capture_output=True, text=True, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit gave no report (exit {run.returncode}):\n{run.stderr[-2000:]}")
        return 1
    fixable, unfixed, skipped = [], [], []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(dep["name"])
        for vuln in dep.get("vulns", []):
            line = f"{dep['name']} {dep.get('version')}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixed.append(line)
    audited = len(report.get("dependencies", [])) - len(skipped)
    print(f"pip-audit: {audited} packages audited, {len(skipped)} not answered by the vulnerability service")
    for line in unfixed:
        print(f"  known, no fixed release yet: {line}")
    for line in fixable:
        print(f"  VULNERABLE, upgrade available: {line}")
    return 1 if fixable else 0


if __name__ == "__main__":
    sys.exit(main())
