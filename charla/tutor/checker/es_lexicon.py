"""Word lists for the Spanish checker, written for it: noun genders, adjectives, and the fixed spellings,
accents and false friends it corrects. A word not listed here is never corrected by a rule that needs it."""

from __future__ import annotations


def words(text: str) -> list[str]:
    """The words of a list written as one string."""
    return text.split()


# Nouns whose gender a learner gets wrong, and frequent ones, by gender (singular forms).
_MASC = words(
    "problema día mapa idioma tema sistema programa clima planeta sofá papá drama poema coche libro perro gato "
    "amigo hermano padre abuelo hijo niño chico hombre señor profesor médico trabajo país lugar restaurante "
    "hotel parque museo cine teatro mercado supermercado hospital banco tren avión autobús barco viaje "
    "verano invierno otoño año mes fin lunes martes miércoles jueves viernes sábado domingo libro cuaderno "
    "bolígrafo lápiz café té vino pan queso pescado pollo arroz helado chocolate desayuno almuerzo postre "
    "dinero tiempo momento examen trabajo apartamento piso edificio barrio pueblo mundo río lago árbol "
    "jardín baño dormitorio salón coche camino nombre apellido número color vestido zapato abrigo sombrero "
    "fútbol deporte juego partido concierto cumpleaños regalo problema corazón pelo ojo brazo pie dolor "
    "teléfono ordenador móvil correo mensaje periódico idioma español inglés francés alemán novio esposo "
    "jefe compañero vecino cuarto plato vaso mes sol cielo viento frío calor equipo colegio"
)
_FEM = words(
    "mano foto moto gente noche calle leche clase ciudad verdad universidad canción lección nación "
    "razón carne flor mujer madre casa mesa silla playa montaña escuela oficina tienda cocina ventana puerta "
    "habitación cama familia hermana amiga abuela hija niña chica señora profesora médica comida cena "
    "fruta manzana naranja cerveza sopa pizza paella hamburguesa tarde mañana semana hora vida música "
    "película fiesta boda reunión biblioteca librería iglesia plaza piscina estación parada playa isla "
    "montaña tierra lluvia nieve primavera ropa camisa falda chaqueta bicicleta ciudad región "
    "historia pregunta respuesta palabra lengua frase idea cosa vez forma manera persona pareja "
    "novia esposa jefa compañera vecina carta revista computadora televisión tele noticia cabeza cara boca "
    "pierna espalda salud cuenta comida bebida sal luz paz voz costumbre opinión información situación "
    "semana universidad actividad clase empresa ayuda llave maleta"
)
GENDER: dict[str, str] = {**dict.fromkeys(_MASC, "Masc"), **dict.fromkeys(_FEM, "Fem")}
# Feminine nouns that begin with a stressed a take "el"/"un" in the singular (el agua fría).
STRESSED_A = {"agua": "Fem", "águila": "Fem", "hambre": "Fem", "alma": "Fem", "área": "Fem", "arma": "Fem",
              "aula": "Fem", "hacha": "Fem"}

# Determiners: written form -> (gender or None when either, number, the forms by (gender, number)).
_DET_SETS = {
    "el la los las": "art", "un una unos unas": "indef", "este esta estos estas": "este",
    "ese esa esos esas": "ese", "aquel aquella aquellos aquellas": "aquel",
    "nuestro nuestra nuestros nuestras": "nuestro",
    "mucho mucha muchos muchas": "mucho", "otro otra otros otras": "otro", "poco poca pocos pocas": "poco",
}
DET_FORMS: dict[str, dict[tuple[str, str], str]] = {}
DET_READING: dict[str, tuple[str, str, str]] = {}
for _forms, _name in _DET_SETS.items():
    _ms, _fs, _mp, _fp = words(_forms)
    DET_FORMS[_name] = {("Masc", "Sing"): _ms, ("Fem", "Sing"): _fs, ("Masc", "Plur"): _mp, ("Fem", "Plur"): _fp}
    for _form, _key in zip((_ms, _fs, _mp, _fp), DET_FORMS[_name], strict=True):
        DET_READING[_form] = (_name, *_key)
DET_FAMILY = {word: reading[0] for word, reading in DET_READING.items()}
# Possessives mark number only.
POSSESSIVE_NUMBER = {"mi": "Sing", "tu": "Sing", "su": "Sing", "mis": "Plur", "tus": "Plur", "sus": "Plur"}
POSSESSIVE_PAIR = {"mi": "mis", "tu": "tus", "su": "sus", "mis": "mi", "tus": "tu", "sus": "su"}

# Adjectives with four forms (-o -a -os -as), by masculine singular.
ADJECTIVES = set(words(
    "bonito blanco negro rojo amarillo pequeño alto bajo nuevo viejo caro barato rico delicioso famoso moderno "
    "antiguo simpático guapo feo largo corto lleno vacío limpio sucio tranquilo precioso perfecto cansado "
    "contento enfermo ocupado aburrido divertido mexicano americano italiano argentino colombiano cubano "
    "peruano chino ruso gordo delgado hermoso malo bueno frío lento rápido serio tímido"))
COLORS_AND_NATIONALITIES = set(words(
    "blanco negro rojo amarillo verde azul gris marrón rosa mexicano americano italiano argentino colombiano "
    "español inglés francés alemán chino japonés ruso"))

# States after ser -> estar (only adjectives that are never a lasting trait after ser).
STATES = set(words(
    "cansado enfermo enojado enfadado preocupado ocupado muerto sentado lleno roto harto enamorado "
    "emocionado equivocado dormido despierto sorprendido estresado agotado mareado resfriado contento"))
STATE_FORMS = {base[:-1] + end for base in STATES for end in ("o", "a", "os", "as")}
SER_TO_ESTAR = {"soy": "estoy", "eres": "estás", "es": "está", "somos": "estamos", "sois": "estáis",
                "son": "están", "era": "estaba", "eras": "estabas", "éramos": "estábamos", "eran": "estaban"}
EVENTS = set(words("fiesta reunión concierto boda clase examen partido cena comida ceremonia conferencia evento "
             "cumpleaños festival película"))
PEOPLE = set(words("madre padre hermano hermana amigo amiga abuelo abuela hijo hija novio novia esposo esposa "
             "profesor profesora primo prima tío tía jefe jefa vecino vecina familia compañero compañera "
             "hermanos amigos padres abuelos hijos primos tíos"))
NAMES = set(words("María Juan Ana Pedro Carlos Lucía Pablo Sofía Miguel Elena Luis Carmen José Laura Javier Marta "
            "Diego Isabel Antonio Paula Jorge Rosa Tom Sarah John Emma"))
PROFESSIONS = set(words("estudiante profesor profesora médico médica doctor doctora abogado abogada ingeniero "
                  "ingeniera enfermero enfermera camarero camarera cocinero cocinera periodista "
                  "programador programadora arquitecto arquitecta"))

# Unambiguous missing accents (the word without its accent is no Spanish word a learner means).
ACCENTS = {w.replace("á", "a").replace("é", "e").replace("í", "i").replace("ó", "o").replace("ú", "u"): w
           for w in words(
    "también aquí allí ahí fácil difícil después además rápido música teléfono película inglés francés "
    "alemán japonés árbol lápiz exámenes jóvenes sábado miércoles día días último próximo café sofá menú "
    "avión canción lección información autobús país adiós todavía quizás así fútbol móvil médico "
    "económico política matemáticas física química América México Perú Canadá Panamá "
    "sábados miércoles japonés portugués simpático simpática química historia")
           if w.replace("á", "a").replace("é", "e").replace("í", "i").replace("ó", "o").replace("ú", "u") != w}
QUESTION_WORDS = {"como": "cómo", "que": "qué", "donde": "dónde", "cuando": "cuándo", "quien": "quién",
                  "cual": "cuál", "cuanto": "cuánto", "cuanta": "cuánta", "cuantos": "cuántos", "cuantas": "cuántas",
                  "porque": "por qué"}

# Frequent learner misspellings (English, Portuguese or French spellings; a missing ñ).
SPELLING = {
    "nesesito": "necesito", "necessito": "necesito", "restaurant": "restaurante", "possible": "posible",
    "imposible": "imposible", "professor": "profesor", "professora": "profesora", "classe": "clase",
    "communicar": "comunicar", "differente": "diferente", "interessante": "interesante", "exelente": "excelente",
    "excellente": "excelente", "exemplo": "ejemplo", "quero": "quiero", "mui": "muy", "bein": "bien",
    "espanol": "español", "manana": "mañana", "nino": "niño", "nina": "niña", "ninos": "niños", "pequeno": "pequeño",
    "pequena": "pequeña", "senor": "señor", "senora": "señora", "espana": "España", "Espana": "España",
    "companero": "compañero", "companera": "compañera", "montana": "montaña", "ensenar": "enseñar",
    "bano": "baño", "cumpleanos": "cumpleaños", "otono": "otoño", "vacasiones": "vacaciones",
    "cerbeza": "cerveza", "yamo": "llamo", "ermano": "hermano", "ermana": "hermana", "ablar": "hablar",
    "aser": "hacer", "acer": "hacer", "tanbién": "también", "tambíen": "también", "exámen": "examen",
    "jóven": "joven", "univercidad": "universidad", "universidád": "universidad", "gramatica": "gramática",
    "familía": "familia", "apartamiento": "apartamento", "ocupada": "ocupada", "hize": "hice", "hizé": "hice",
    "biblioteka": "biblioteca", "importánte": "importante", "inteligente": "inteligente", "inteligénte": "inteligente",
    "vegetariana": "vegetariana", "travajo": "trabajo", "trabaho": "trabajo", "bibir": "vivir", "estudiar": "estudiar",
    "disculpe": "disculpe", "lenguage": "lenguaje", "language": "lenguaje", "ciudád": "ciudad",
}
SPELLING = {wrong: right for wrong, right in SPELLING.items() if wrong != right}
