from transfersep.model.chimera import ChimeraConfig, ChimeraNet

__all__ = ["ChimeraConfig", "ChimeraNet"]
