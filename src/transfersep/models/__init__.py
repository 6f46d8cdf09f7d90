from transfersep.models.chimera import ChimeraConfig, ChimeraNet

__all__ = ["ChimeraConfig", "ChimeraNet"]
