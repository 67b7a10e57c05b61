"""Institution indicators: the catalogue (:mod:`.catalogue`) and the yearly growth targets
(:mod:`.targets`). Reports, the monthly ranking, the notice and supervision come next."""
