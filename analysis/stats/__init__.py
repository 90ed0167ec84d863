"""MRMC reader-study statistics (numpy/scipy only; no Django).

Modules, in the order data flows through them:

* ``data``: ``MRMCData`` (ratings as a (treatments, readers, cases) array, NaN = not read) and
  ``MRMCInputError`` (one human-readable line per problem).
* ``io``: ``read_long_csv``, ``read_imrmc``, ``read_study``.
* ``roc``: empirical AUC and placement values (Sun & Xu 2014's midrank values, computed with
  numpy sorts and binary searches); ``delong_test``, the paired DeLong test.
* ``fom``: figure of merit per reader and arm (auc, sensitivity, specificity, accuracy) with
  the per-case components the covariance estimators use.
* ``covariance``: jackknife, DeLong and stratified bootstrap case-sampling covariance, for
  crossed, split-plot and partially paired designs (the module docstring says how each pair of
  units is handled).
* ``mrmc``: ``or_analysis`` (Obuchowski-Rockette with Hillis ddf; RRRC, FRRC, RRFC; pairwise
  differences with Holm-adjusted p-values; single-arm CIs).
* ``dbm``: ``dbm_analysis`` on jackknife pseudovalues, a cross-check of OR.
* ``power``: ``power`` and ``cases_for_power`` for a future two-arm study from a pilot.
* ``inference``: result types, Holm, and the t/F/chi-square/normal functions (from
  ``scipy.special``: ``scipy.stats`` is not imported on the ``manage.py mrmc`` path, it costs half
  a second); ``id_text``/``display_ids`` print whole-number ids stored as ``1.0`` as ``1``.
* ``render``: plain-text tables of an OR result.
"""
