"""Model families and the encoders they share: nn.Modules, frozen configs, checkpoint conversion."""
