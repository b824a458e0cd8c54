package blip2

import (
	"errors"

	"blipflow/model/config"
	"blipflow/model/nn"
)

func loadT5(l *nn.Loader, c config.Text) (LanguageModel, error) { return nil, errors.New("t5: pending") }
