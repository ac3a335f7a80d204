package views

import (
	"fmt"

	"github.com/a-h/templ"

	"doorman/static"
)

// Icons are drawn from one sprite (static/files/icons.svg), which the
// browser fetches once and caches for a year: each icon on a page is a
// short <use> reference instead of its whole drawing (the Security page
// carries about twenty). They are decorative (aria-hidden): the text next
// to them says the same thing. Strokes use currentColor, so they follow
// the light and dark themes. Each icon's markup is made once, at start.
var (
	logoIcon    = spriteIcon("icon logo", "logo", 24)
	xIcon       = spriteIcon("icon", "x", 20)
	desktopIcon = spriteIcon("icon device", "desktop", 24)
	phoneIcon   = spriteIcon("icon device", "phone", 24)
	tabletIcon  = spriteIcon("icon device", "tablet", 24)
	trashIcon   = spriteIcon("icon", "trash", 20)
	keyIcon     = spriteIcon("icon device", "key", 24)
)

func iconLogo() templ.Component  { return logoIcon }
func iconX() templ.Component     { return xIcon }
func iconTrash() templ.Component { return trashIcon }
func iconKey() templ.Component   { return keyIcon }

// deviceIcon draws a desktop, phone or tablet.
func deviceIcon(kind string) templ.Component {
	switch kind {
	case "phone":
		return phoneIcon
	case "tablet":
		return tabletIcon
	}
	return desktopIcon
}

// spriteURL is the cache-busting URL of the icon sprite. The sprite is
// compiled into the binary, so its URL cannot change while it runs.
var spriteURL = func() string {
	f, err := static.New()
	if err != nil {
		panic(err)
	}
	u, err := f.Path("icons.svg")
	if err != nil {
		panic(err)
	}
	return u
}()

// spriteIcon is the markup of the sprite's symbol id at size px. Every part
// is a constant of ours (the URL is /static/icons.<hex>.svg), so nothing
// needs escaping.
func spriteIcon(class, id string, size int) templ.Component {
	return templ.Raw(fmt.Sprintf(`<svg class="%s" aria-hidden="true" focusable="false" width="%d" height="%d"><use href="%s#%s"></use></svg>`,
		class, size, size, spriteURL, id))
}
