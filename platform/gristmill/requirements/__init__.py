"""From a sentence to a spec: templates (plain YAML data), the grammar of numbers and units, the
understanding of a sentence against ingested tables, and label recipes built from events.

The understanding sits behind one interface (:class:`gristmill.requirements.understand.Understander`)
so that a local language model could replace the rules-and-embeddings implementation later.
"""
