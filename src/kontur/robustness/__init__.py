"""Robustness audit of a model release before it is deployed (``kontur model audit``).

The paper asks for tests before deployment against digital and physical adversarial
effects, triggers (backdoors), lighting, scale, angle, compression and occlusion. This
package measures them on real footage with ground truth, black-box (the model is only
ever run, never differentiated):

- :mod:`~kontur.robustness.frames`: the audit's frames and their ground-truth person boxes;
- :mod:`~kontur.robustness.corruptions`: the corruptions, 5 severities each;
- :mod:`~kontur.robustness.quality`: detection quality (precision, recall, AP50);
- :mod:`~kontur.robustness.patch`: a printable adversarial patch, optimised black-box;
- :mod:`~kontur.robustness.trigger`: a black-box backdoor (trigger) scan.
"""
