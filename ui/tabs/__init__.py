"""The app's tabs, one module each, in the order they appear. A tab never imports another tab (a test checks it):
what two tabs share lives beside them in :mod:`ui` (:mod:`ui.session`, :mod:`ui.sliders`, :mod:`ui.evaluation`).

Each module has ``build(...)``, which makes the tab's components (inside an open ``gr.Tabs``) and returns
them as a small dataclass, and ``wire(...)``, which attaches the tab's events once every tab is built
(events may read or fill components of other tabs: Compress fills the charts of See what changed; the
other tab's component dataclass is imported for its type only, under ``TYPE_CHECKING``).
The handlers sit beside them, each wearing :func:`ui.events.guard`.

* :mod:`~ui.tabs.compress`: 1-3 pick a model, set the plan (:mod:`ui.sliders`), compress; downloads;
* :mod:`~ui.tabs.changes`: See what changed (charts, sensitivity, measured sensitivity (:mod:`ui.measured`), one
  layer's clusters);
* :mod:`~ui.tabs.listen`: Listen & compare (both models transcribe a clip, WER and word diffs);
* :mod:`~ui.tabs.how`: How it works (the method drawn on a real layer);
* :mod:`~ui.tabs.tuning`: Tuning history (Evaluate this plan on the bundled clips, history chart, restore).
"""
