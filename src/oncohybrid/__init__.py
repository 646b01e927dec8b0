"""oncohybrid: quantitative hybrid imaging in oncology.

Layers point one way: pure computation (``imaging``, ``quant``, ``segment``,
``response``) knows nothing of storage or web; ``store`` persists; ``services``
combine them; ``cli``, ``web`` and ``pacs`` sit on top. See docs/architecture.md.
"""

__version__ = "0.1.0"
