"""Where report.pdf's time goes: WeasyPrint import, page layout, writing (with the attachment).

Reads a results.json (e.g. from `cg-gate demo`) and times each phase of `render_pdf` in this
process, best of `--repeat` runs for the phases after the import, plus the share of the
writing that the attached results.json costs.

    python benchmarks/bench_pdf.py cg-gate-demo/results.json [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, help="a results.json")
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()

    t0 = time.perf_counter()
    import weasyprint

    imported = time.perf_counter() - t0
    from cg_gate.record import dump_results, read_results
    from cg_gate.render import templates_dir
    from cg_gate.render._html import render_html_text
    from cg_gate.render._pdf import font_face_css, local_only_fetcher

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    run = read_results(opts.results)
    html, results_json = render_html_text(run), dump_results(run)
    fetcher = local_only_fetcher()
    best = {"layout": float("inf"), "write": float("inf"), "write_bare": float("inf")}
    for _ in range(opts.repeat):
        t = time.perf_counter()
        document = weasyprint.HTML(string=html, base_url=templates_dir().as_uri() + "/",
                                   url_fetcher=fetcher).render(
            stylesheets=[weasyprint.CSS(string=font_face_css(), url_fetcher=fetcher)])
        t1 = time.perf_counter()
        attachment = weasyprint.Attachment(string=results_json, name="results.json")
        pdf = document.write_pdf(attachments=[attachment])
        t2 = time.perf_counter()
        document.write_pdf()
        t3 = time.perf_counter()
        best = {"layout": min(best["layout"], t1 - t), "write": min(best["write"], t2 - t1),
                "write_bare": min(best["write_bare"], t3 - t2)}
    print(f"record: {opts.results} ({len(results_json) / 1e6:.1f} MB results.json, "
          f"{len(html) / 1e3:.0f} kB HTML)")
    print(f"import weasyprint:            {imported:5.2f} s")
    print(f"parse + layout:               {best['layout']:5.2f} s  ({len(document.pages)} pages)")
    print(f"write, results.json attached: {best['write']:5.2f} s  ({len(pdf) / 1e3:.0f} kB)")
    print(f"write, nothing attached:      {best['write_bare']:5.2f} s")
    print(f"attachment / write:           {(best['write'] - best['write_bare']) / best['write']:.2f}")


if __name__ == "__main__":
    main()
