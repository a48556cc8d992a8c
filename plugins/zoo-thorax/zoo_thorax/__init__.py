"""zoo-thorax: the paper's thoracic organ models as a zoo-ensemble plugin."""
