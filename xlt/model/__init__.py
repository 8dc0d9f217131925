"""The model layer: encoders and tokenizers (`loading`), what the head reads (`pooling`), the
head itself (`heads`), which parameters train (`freezing`) and cached encoder features
(`features`). Techniques (the layer above) decide which of these a job uses."""
