"""The app's tabs, one module each, in the order they appear.

Each module has ``build(...)``, which makes the tab's components (inside an open ``gr.Tabs``) and returns
them as a small dataclass, and ``wire(...)``, which attaches the tab's events once every tab is built
(events may read or fill components of other tabs: Compress fills the charts of See what changed).
The handlers sit beside them, each wearing :func:`ui.events.guard`.

* :mod:`~ui.tabs.compress`: 1-3 pick a model, set the plan (:mod:`~ui.tabs.sliders`), compress; downloads;
* :mod:`~ui.tabs.changes`: See what changed (charts, sensitivity, one layer's clusters);
* :mod:`~ui.tabs.listen`: Listen & compare (both models transcribe a clip, WER and word diffs);
* :mod:`~ui.tabs.how`: How it works (the method drawn on a real layer);
* :mod:`~ui.tabs.tuning`: Tuning history (Evaluate this plan on the bundled clips, history chart, restore).
"""
