"""A benchmark directory written by hand, for the harness tests and the studies' tests."""


def write_benchmark(root, models, tasks, ft, lp=None, params=None, domains=None, task_domains=None, n_classes=5):
    """CSV files of a benchmark: ``ft``/``lp`` are [tasks, models] accuracy arrays."""
    lp = ft * 0.9 if lp is None else lp
    params = params or [1000 * (i + 1) for i in range(len(models))]
    domains = domains or ["glyphs"] * len(models)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["model,architecture,source_domain,init,params"]
    lines += [f"{m},resnet,{d},scratch,{p}" for m, d, p in zip(models, domains, params, strict=True)]
    (root / "zoo.csv").write_text("\n".join(lines) + "\n")
    lines = ["model,task,finetune_acc,linear_probe_acc"]
    lines += [f"{m},{t},{float(ft[j, i])!r},{float(lp[j, i])!r}"
              for j, t in enumerate(tasks) for i, m in enumerate(models)]
    (root / "ground_truth.csv").write_text("\n".join(lines) + "\n")
    if task_domains is not None:
        lines = ["task,domain,description,n_classes,images_per_class"]
        lines += [f"{t},{task_domains.get(t, '')},images of {t},{n_classes},30" for t in tasks]
        (root / "tasks.csv").write_text("\n".join(lines) + "\n")
    return root
