-- A plant is a company's: its key leads with the NIB (domain.plant_key), so another company at the same address
-- neither blocks an application nor inherits a facility. Keys written before take their permit's own NIB.
UPDATE permits SET plant_key = nib || '|' || plant_key WHERE plant_key <> '';
